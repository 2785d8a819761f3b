# One training epoch of the built-in CNN (kiln train --model cnn: conv32-BN-
# ReLU-pool, conv64-BN-ReLU-pool, fc128, dropout 0.25, fc10; SGD momentum 0.9,
# weight decay 5e-4, batch 64, 55000 examples) in PyTorch, for the epoch-time
# comparison in BENCHMARKS.md. Random data (the data path is not timed):
#   /usr/bin/python3 bench/torch_cnn_epoch.py THREADS
import sys, time
import torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1]))
class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.c1=nn.Conv2d(1,32,3,padding=1); s.b1=nn.BatchNorm2d(32)
        s.c2=nn.Conv2d(32,64,3,padding=1); s.b2=nn.BatchNorm2d(64)
        s.f1=nn.Linear(3136,128); s.d=nn.Dropout(0.25); s.f2=nn.Linear(128,10)
    def forward(s,x):
        x=x.view(-1,1,28,28)
        x=F.max_pool2d(F.relu(s.b1(s.c1(x))),2)
        x=F.max_pool2d(F.relu(s.b2(s.c2(x))),2)
        return s.f2(s.d(F.relu(s.f1(x.flatten(1)))))
m=Net(); opt=torch.optim.SGD(m.parameters(),lr=0.05,momentum=0.9,weight_decay=5e-4)
X=torch.rand(55000,784); Y=torch.randint(0,10,(55000,))
t=time.perf_counter()
perm=torch.randperm(55000)
for i in range(0,55000-63,64):
    idx=perm[i:i+64]
    opt.zero_grad(); l=F.cross_entropy(m(X[idx]),Y[idx]); l.backward(); opt.step()
print("torch threads", sys.argv[1], "epoch s", time.perf_counter()-t)
