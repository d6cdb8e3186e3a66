// JavaScript face of the netlink core: a socket handle whose batches run on the
// libuv thread pool, one at a time per socket, so the event loop never waits on
// the kernel; plus the codec entry points the byte-fixture tests call.
#include "binding.h"

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>

#include "codec.h"

namespace nl {

namespace {

struct Job {
  const Codec* codec;
  std::vector<uint8_t> buf;
  std::vector<Request> reqs;
  std::vector<Result> results;
  Napi::Promise::Deferred deferred;
  explicit Job(Napi::Env env) : codec(nullptr), deferred(Napi::Promise::Deferred::New(env)) {}
};

Napi::Error sysError(Napi::Env env, int err, const std::string& what) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

const Codec* codecArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "codec name expected");
  const Codec* c = findCodec(info[i].As<Napi::String>().Utf8Value());
  if (!c) throw Napi::TypeError::New(info.Env(), "unknown codec " + info[i].As<Napi::String>().Utf8Value());
  return c;
}

// Encodes every operation before anything is sent: one bad operation rejects
// the whole batch untouched.
void encodeAll(const Napi::CallbackInfo& info, const Codec* codec, uint16_t family, const Napi::Array& ops,
               Builder& b, std::vector<Request>& reqs) {
  reqs.resize(ops.Length());
  for (uint32_t i = 0; i < ops.Length(); i++) {
    Napi::Value v = ops.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(info.Env(), "operation " + std::to_string(i) + " is not an object");
    size_t start = b.size();
    try {
      codec->encode(v.As<Napi::Object>(), family, b, reqs[i]);
    } catch (const EncodeError& e) {
      throw Napi::RangeError::New(info.Env(), "operation " + std::to_string(i) + ": " + e.what());
    }
    reqs[i].offset = start;
    reqs[i].length = b.size() - start;
  }
}

// The records of a request's data messages, and the kind of the first one the
// codec could not read whole (nullptr: none).
struct Decoded {
  Napi::Array records;
  const char* malformed = nullptr;
};

// Decodes every data message of `p`. A malformed one ends the decoding unless
// `skipMalformed`: then it is left out and the rest still read.
Decoded decodeReplies(Napi::Env env, const Codec* codec, const uint8_t* p, size_t len, bool skipMalformed) {
  Decoded d{Napi::Array::New(env)};
  uint32_t n = 0;
  while (len >= NLMSG_HDRLEN) {
    auto h = reinterpret_cast<const nlmsghdr*>(p);
    if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > len) break;
    if (h->nlmsg_type >= NLMSG_MIN_TYPE) {
      try {
        Napi::Value r = codec->decode(env, h);
        if (!r.IsUndefined()) d.records.Set(n++, r);
      } catch (const Malformed& m) {
        if (!d.malformed) d.malformed = m.kind;
        if (!skipMalformed) break;
      }
    }
    size_t step = std::min<size_t>(NLMSG_ALIGN(h->nlmsg_len), len);
    p += step;
    len -= step;
  }
  return d;
}

std::string malformedText(const char* kind) {
  return std::string("malformed reply: a ") + kind + " record the decoder could not read whole";
}

bool plainSuccess(const Result& r) {
  return r.error == 0 && r.extack.empty() && !r.interrupted && r.replies.empty() && r.echo.empty();
}

// One frozen { error: 0, records: [] } stands for every plain success of a
// batch: most results are that, and a large batch should not allocate per op.
Napi::Object sharedSuccess(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("error", 0);
  Napi::Array none = Napi::Array::New(env);
  o.Set("records", none);
  o.Freeze();
  none.Freeze();
  return o;
}

// A reply the codec could not read whole (an attribute's length past its nest,
// a value shorter than its type, a record without its key) fails a request that
// had succeeded with EBADMSG, its text naming the record, rather than giving
// half a record to act on. A request the kernel failed keeps its errno; the
// malformed record is left out of it.
Napi::Object resultObject(Napi::Env env, const Codec* codec, const Result& r) {
  Napi::Object o = Napi::Object::New(env);
  Decoded d = decodeReplies(env, codec, r.replies.data(), r.replies.size(), r.error != 0);
  if (r.error == 0 && d.malformed) {
    o.Set("error", EBADMSG);
    o.Set("extack", malformedText(d.malformed));
    o.Set("records", Napi::Array::New(env));
    return o;
  }
  o.Set("error", r.error);
  if (!r.extack.empty()) o.Set("extack", r.extack);
  if (r.extackOffset) o.Set("extackOffset", r.extackOffset);
  if (r.interrupted) o.Set("interrupted", true);
  o.Set("records", d.records);
  if (r.echo.size() >= NLMSG_HDRLEN) {
    Napi::Value echo = codec->decodeEcho(env, reinterpret_cast<const nlmsghdr*>(r.echo.data()));
    if (!echo.IsUndefined()) o.Set("echo", echo);
  }
  return o;
}

}  // namespace

class SocketHandle : public Napi::ObjectWrap<SocketHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NetlinkSocket",
                       {InstanceMethod<&SocketHandle::Execute>("execute"),
                        InstanceMethod<&SocketHandle::Close>("close"),
                        InstanceAccessor<&SocketHandle::PortId>("portId")});
  }

  explicit SocketHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SocketHandle>(info) {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "netlink protocol number expected");
    try {
      sock_ = std::make_unique<Socket>(info[0].As<Napi::Number>().Int32Value());
    } catch (const SysError& e) {
      throw sysError(info.Env(), e.err, std::string("netlink ") + e.call);
    }
  }

  // execute(codec, family, ops) -> Promise<Array<{error, extack?, records}>>
  Napi::Value Execute(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto job = std::make_unique<Job>(env);
    job->codec = codecArg(info, 0);
    if (!info[1].IsNumber() || !info[2].IsArray()) throw Napi::TypeError::New(env, "execute(codec, family, ops[])");
    if (closing_ || sock_->closed()) throw sysError(env, EBADF, "netlink socket is closed");
    Builder b;
    encodeAll(info, job->codec, static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value()),
              info[2].As<Napi::Array>(), b, job->reqs);
    job->buf = std::move(b.bytes());
    Napi::Promise p = job->deferred.Promise();
    queue_.push_back(std::move(job));
    Pump();
    return p;
  }

  // close() -> Promise<void>: work already queued finishes first.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    auto d = Napi::Promise::Deferred::New(info.Env());
    closing_ = true;
    closeWaiters_.push_back(d);
    Pump();
    return d.Promise();
  }

  Napi::Value PortId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sock_->portId()); }

 private:
  class Worker : public Napi::AsyncWorker {
   public:
    Worker(SocketHandle* owner, Job* job)
        : Napi::AsyncWorker(owner->Env(), "tsproxy:netlink"), owner_(owner), job_(job) {
      owner_->Ref();  // the handle stays alive while the kernel works for it
    }
    void Execute() override { owner_->sock_->transact(job_->buf, job_->reqs, job_->results); }
    void OnOK() override {
      Napi::Env env = Env();
      Napi::HandleScope scope(env);
      Napi::Array out = Napi::Array::New(env, job_->results.size());
      Napi::Object ok = sharedSuccess(env);
      for (size_t i = 0; i < job_->results.size(); i++)
        out.Set(static_cast<uint32_t>(i), plainSuccess(job_->results[i]) ? ok : resultObject(env, job_->codec, job_->results[i]));
      job_->deferred.Resolve(out);
      owner_->Done();
    }
    void OnError(const Napi::Error& e) override {
      job_->deferred.Reject(e.Value());
      owner_->Done();
    }

   private:
    SocketHandle* owner_;
    Job* job_;
  };

  void Pump() {
    if (running_) return;
    if (queue_.empty()) {
      if (closing_) {
        sock_->close();
        for (auto& d : closeWaiters_) d.Resolve(Env().Undefined());
        closeWaiters_.clear();
      }
      return;
    }
    running_ = std::move(queue_.front());
    queue_.pop_front();
    (new Worker(this, running_.get()))->Queue();
  }

  void Done() {
    running_.reset();
    Unref();
    Pump();
  }

  std::unique_ptr<Socket> sock_;
  std::deque<std::unique_ptr<Job>> queue_;
  std::unique_ptr<Job> running_;
  bool closing_ = false;
  std::vector<Napi::Promise::Deferred> closeWaiters_;
};

namespace {

// encode(codec, family, ops, firstSeq = 1) -> Buffer: the exact bytes a batch sends.
Napi::Value EncodeFn(const Napi::CallbackInfo& info) {
  const Codec* codec = codecArg(info, 0);
  Builder b;
  std::vector<Request> reqs;
  encodeAll(info, codec, static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value()), info[2].As<Napi::Array>(),
            b, reqs);
  uint32_t seq = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 1;
  for (const Request& r : reqs) reinterpret_cast<nlmsghdr*>(b.at(r.offset))->nlmsg_seq = seq++;
  return Napi::Buffer<uint8_t>::Copy(info.Env(), b.bytes().data(), b.size());
}

// decode(codec, buffer) -> records of every data message in the buffer; a
// message the codec cannot read whole throws an EBADMSG error naming its record.
Napi::Value DecodeFn(const Napi::CallbackInfo& info) {
  const Codec* codec = codecArg(info, 0);
  auto buf = info[1].As<Napi::Buffer<uint8_t>>();
  Decoded d = decodeReplies(info.Env(), codec, buf.Data(), buf.Length(), false);
  if (d.malformed) {
    Napi::Error e = Napi::Error::New(info.Env(), malformedText(d.malformed));
    e.Set("errno", Napi::Number::New(info.Env(), EBADMSG));
    e.Set("code", Napi::String::New(info.Env(), "EBADMSG"));
    throw e;
  }
  return d.records;
}

// collect(codec, dumps[], portId, firstSeq, datagrams[], ackSlot?) -> { complete, results, retries }:
// the receive loop's matching logic over recorded datagrams. With ackSlot, only
// that request asked for an ACK (as Socket::runChunk sends a burst).
Napi::Value CollectFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Codec* codec = codecArg(info, 0);
  Napi::Array dumps = info[1].As<Napi::Array>();
  std::vector<Request> reqs(dumps.Length());
  std::vector<size_t> slots(dumps.Length());
  for (uint32_t i = 0; i < dumps.Length(); i++) {
    reqs[i].dump = dumps.Get(i).ToBoolean().Value();
    slots[i] = i;
  }
  std::vector<Result> results(reqs.size());
  size_t ackSlot = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Uint32Value() : SIZE_MAX;
  Collector c(info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value(), slots, reqs,
              results, ackSlot);
  Napi::Array grams = info[4].As<Napi::Array>();
  for (uint32_t i = 0; i < grams.Length(); i++) {
    auto g = grams.Get(i).As<Napi::Buffer<uint8_t>>();
    c.feed(g.Data(), g.Length());
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("complete", c.complete());
  Napi::Array rs = Napi::Array::New(env, results.size());
  for (size_t i = 0; i < results.size(); i++) rs.Set(static_cast<uint32_t>(i), resultObject(env, codec, results[i]));
  out.Set("results", rs);
  Napi::Array rt = Napi::Array::New(env);
  uint32_t n = 0;
  for (auto& [index, why] : c.retries()) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("index", static_cast<uint32_t>(index));
    r.Set("reason", why == Collector::Retry::Busy ? "busy" : "interrupted");
    rt.Set(n++, r);
  }
  out.Set("retries", rt);
  return out;
}

}  // namespace

void initBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("NetlinkSocket", SocketHandle::Define(env));
  exports.Set("encode", Napi::Function::New(env, EncodeFn, "encode"));
  exports.Set("decode", Napi::Function::New(env, DecodeFn, "decode"));
  exports.Set("collect", Napi::Function::New(env, CollectFn, "collect"));
}

}  // namespace nl
