// The built-in MLP's options as `kiln train --hidden` gives them:
// parse_mlp_hidden accepts comma-separated widths from 1 to 2^31-1 and
// rejects anything else with a message quoting the text; the model built has
// one Linear per width plus the output layer.
#include "frontend/models.h"

#include "ir/error.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln {
namespace {

TEST(MlpHidden, ParsesWidths) {
  EXPECT_EQ(parse_mlp_hidden("256,128"), (std::vector<int64_t>{256, 128}));
  EXPECT_EQ(parse_mlp_hidden("7"), (std::vector<int64_t>{7}));
  EXPECT_EQ(parse_mlp_hidden("2147483647"), (std::vector<int64_t>{2147483647}));
}

TEST(MlpHidden, RejectsWhatIsNotAWidth) {
  for (const char *bad :
       {"", "0", "256,0", "abc", "12x", "256,,128", ",5", "5,", "-5", "+5",
        " 5", "5 ", "2147483648", "99999999999999999999", "1.5"}) {
    try {
      parse_mlp_hidden(bad);
      ADD_FAILURE() << "'" << bad << "' accepted";
    } catch (const Error &e) {
      EXPECT_NE(
          std::string(e.what()).find(std::string("--hidden '") + bad + "'"),
          std::string::npos)
          << e.what();
    }
  }
}

TEST(MlpHidden, BuildsTheLayers) {
  MlpOptions o;
  o.hidden = parse_mlp_hidden("64,32,16");
  EXPECT_EQ(mlp_shape_name(o), "784-64-32-16-10");
  auto model = make_mlp(o);
  auto params = model->parameters();
  ASSERT_EQ(params.size(), 8u); // 4 Linear layers, weight and bias each
  EXPECT_EQ(params[0]->type().shape, (Shape{64, 784})); // Linear: [out, in]
  EXPECT_EQ(params[6]->type().shape, (Shape{10, 16}));
  EXPECT_EQ(mlp_shape_name(MlpOptions{}), "784-256-128-10");
}

} // namespace
} // namespace kiln
