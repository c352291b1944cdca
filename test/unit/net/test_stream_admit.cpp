// Unit tests for the one output admission (net/stream.h Stream::admit): every connection's bound on
// buffered output goes through it, so its three answers are pinned here. A stream that is never
// connected keeps what it queues (nothing is written before the loop runs), which is all this needs.
#include "net/stream.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using mg::SendResult;

class QuietStream final : public mg::Stream {
 public:
  QuietStream(uv_loop_t* loop, bool& freed) : Stream(loop), freed_(freed) {}

 private:
  ~QuietStream() override = default;
  void on_read(const char*, size_t) override {}
  void on_read_end(int) override {}
  void on_close() override { freed_ = true; }
  bool& freed_;
};

class StreamAdmit : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ctx_.open(&loop_);
    stream_ = new QuietStream(&loop_, freed_);
  }
  void TearDown() override {
    stream_->close_now();
    ctx_.close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_TRUE(freed_);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  uv_loop_t loop_{};
  mg::LoopContext ctx_;
  bool freed_ = false;
  QuietStream* stream_ = nullptr;
};

TEST_F(StreamAdmit, UpToTheLimitIsOkOneByteMoreIsBufferFull) {
  EXPECT_EQ(stream_->admit(100, 100), SendResult::Ok);
  EXPECT_EQ(stream_->admit(101, 100), SendResult::BufferFull);
  stream_->write(std::string(60, 'x'));
  ASSERT_EQ(stream_->queued_bytes(), 60u);
  EXPECT_EQ(stream_->admit(40, 100), SendResult::Ok);
  EXPECT_EQ(stream_->admit(41, 100), SendResult::BufferFull);
  EXPECT_EQ(stream_->admit(0, 59), SendResult::BufferFull);  // already over a lower bound
}

// A closing stream drops what is written to it: Closing, whatever the bound, so its owner neither
// queues nor closes it again for its limit.
TEST_F(StreamAdmit, AClosingStreamAnswersClosingBeforeTheLimit) {
  stream_->write(std::string(60, 'x'));
  stream_->close_after_flush();
  EXPECT_EQ(stream_->admit(1, 100), SendResult::Closing);
  EXPECT_EQ(stream_->admit(1000, 100), SendResult::Closing);
  stream_->close_now();
  EXPECT_EQ(stream_->admit(1, 100), SendResult::Closing);
}

}  // namespace
