import sys
print("cuda matches the CPU, and its checkpoint resumes on the CPU (fake)")
sys.exit(0)
