// placeholder
#include <gtest/gtest.h>
TEST(WsCodec, Placeholder) {}
