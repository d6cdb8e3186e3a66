// JavaScript face of native/iptc: a transaction object whose work (reading the
// table, applying edits, committing) runs on libuv's thread pool, so the event
// loop never waits for libiptc or the kernel. lib/iptables runs one job at a
// time per address family; the library mutex in table.cc is the backstop for
// worker threads.
#include "binding.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "table.h"

namespace iptc {

namespace {

const Api* apiOrThrow(Napi::Env env, int family) {
  std::string error;
  const Api* api = load(family, &error);
  if (!api) {
    Napi::Error e = Napi::Error::New(env, error);
    e.Set("code", "ERR_TSPROXY_NO_LIBIPTC");
    throw e;
  }
  return api;
}

int familyArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "family 4 or 6 expected");
  int f = info[i].As<Napi::Number>().Int32Value();
  if (f != 4 && f != 6) throw Napi::TypeError::New(info.Env(), "family 4 or 6 expected");
  return f;
}

std::string tableArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "table name expected");
  std::string t = info[i].As<Napi::String>().Utf8Value();
  if (t.empty() || t.size() > 31) throw Napi::TypeError::New(info.Env(), "table name of 1 to 31 bytes expected");
  return t;
}

Napi::Value errorValue(Napi::Env env, const OpError& err) {
  std::string msg = strerror(err.err);
  if (!err.detail.empty()) msg = err.detail + ": " + msg;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err.err));
  e.Set("index", Napi::Number::New(env, err.index));
  e.Set("kind", Napi::Number::New(env, err.kind));
  if (!err.chain.empty()) e.Set("chain", err.chain);
  if (!err.detail.empty()) e.Set("detail", err.detail);
  return e.Value();
}

Napi::Object dumpValue(Napi::Env env, Dump& d) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array chains = Napi::Array::New(env, d.chains.size());
  for (size_t i = 0; i < d.chains.size(); i++) {
    const ChainInfo& c = d.chains[i];
    Napi::Object co = Napi::Object::New(env);
    co.Set("name", c.name);
    co.Set("builtin", c.builtin);
    if (d.surveyed) {  // 111 000 chains at 10k services: only what a survey says
      co.Set("hash", c.hash);
      chains.Set(static_cast<uint32_t>(i), co);
      continue;
    }
    if (c.builtin) {
      co.Set("policy", c.policy);
      co.Set("packets", Napi::Number::New(env, static_cast<double>(c.packets)));
      co.Set("bytes", Napi::Number::New(env, static_cast<double>(c.bytes)));
    }
    co.Set("references", c.references);
    co.Set("rules", c.rules);
    chains.Set(static_cast<uint32_t>(i), co);
  }
  o.Set("chains", chains);
  auto* rules = new std::vector<uint8_t>(std::move(d.rules));
  o.Set("rules", Napi::Buffer<uint8_t>::New(env, rules->data(), rules->size(),
                                            [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, rules));
  Napi::Object sets = Napi::Object::New(env);
  for (auto& [index, name] : d.sets) sets.Set(std::to_string(index), name);
  o.Set("sets", sets);
  if (d.surveyed) o.Set("reread", d.reread);
  return o;
}

}  // namespace

class Transaction : public Napi::ObjectWrap<Transaction> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "IptcTransaction",
                       {InstanceMethod<&Transaction::Apply>("apply"), InstanceMethod<&Transaction::DumpJs>("dump"),
                        InstanceMethod<&Transaction::Commit>("commit"),
                        InstanceMethod<&Transaction::Release>("release")});
  }

  // new IptcTransaction(family, table, { reuseSnapshots, lockTimeoutMs })
  explicit Transaction(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Transaction>(info) {
    Napi::Env env = info.Env();
    int family = familyArg(info, 0);
    std::string table = tableArg(info, 1);
    Options opts;
    if (info[2].IsObject()) {
      Napi::Object o = info[2].As<Napi::Object>();
      if (o.Has("reuseSnapshots")) opts.reuseSnapshots = o.Get("reuseSnapshots").ToBoolean().Value();
      if (o.Has("lockTimeoutMs")) opts.lockTimeoutMs = o.Get("lockTimeoutMs").ToNumber().Int32Value();
    }
    tx_ = std::make_unique<Tx>(apiOrThrow(env, family), std::move(table), opts);
  }

 private:
  enum class Kind { Apply, Dump, Commit, Release };

  class Job : public Napi::AsyncWorker {
   public:
    Job(Transaction* owner, Kind kind, Spans ops)
        : Napi::AsyncWorker(owner->Env(), "tsproxy:iptc"),
          owner_(owner),
          kind_(kind),
          ops_(std::move(ops)),
          deferred_(Napi::Promise::Deferred::New(owner->Env())) {
      owner_->Ref();  // the transaction outlives its job
    }
    Napi::Promise Promise() { return deferred_.Promise(); }
    std::string chain;
    bool hasChain = false, rules = false, hasOnly = false, survey = false;
    std::vector<std::string> only;

    void Execute() override {
      Tx& tx = *owner_->tx_;
      switch (kind_) {
        case Kind::Apply: ok_ = tx.apply(ops_, &err_); break;
        case Kind::Dump:
          if (survey) {
            ok_ = tx.survey(&dump_, &err_);
            dump_.surveyed = true;
          } else {
            ok_ = tx.dump(hasChain ? chain.c_str() : nullptr, rules, &dump_, &err_, hasOnly ? &only : nullptr);
          }
          break;
        case Kind::Commit: ok_ = tx.commit(ops_, &info_, &err_); break;
        case Kind::Release: tx.release(); ok_ = true; break;
      }
    }
    void OnOK() override {
      Napi::Env env = Env();
      Napi::HandleScope scope(env);
      if (!ok_) {
        deferred_.Reject(errorValue(env, err_));
      } else if (kind_ == Kind::Dump) {
        deferred_.Resolve(dumpValue(env, dump_));
      } else if (kind_ == Kind::Commit) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("snapshotReused", info_.snapshotReused);
        o.Set("replayed", info_.replayed);
        o.Set("lockMs", info_.lockMs);
        o.Set("loadMs", info_.loadMs);
        o.Set("applyMs", info_.applyMs);
        o.Set("commitMs", info_.commitMs);
        o.Set("entries", Napi::Number::New(env, static_cast<double>(info_.entries)));
        o.Set("bytes", Napi::Number::New(env, static_cast<double>(info_.bytes)));
        deferred_.Resolve(o);
      } else {
        deferred_.Resolve(env.Undefined());
      }
      done();
    }
    void OnError(const Napi::Error& e) override {
      deferred_.Reject(e.Value());
      done();
    }
    // A transaction that has ended (committed, failed, released) never
    // replays its edits again: the operation buffers are let go now rather
    // than when the wrapper is collected (at 10k services they are the size
    // of the table, ~190 MB).
    void done() {
      if (kind_ == Kind::Commit || kind_ == Kind::Release || (kind_ == Kind::Apply && !ok_)) owner_->buffers_.clear();
      owner_->Unref();
    }

   private:
    Transaction* owner_;
    Kind kind_;
    Spans ops_;
    Napi::Promise::Deferred deferred_;
    bool ok_ = false;
    OpError err_;
    Dump dump_;
    CommitInfo info_;
  };

  // Keeps the ops buffers alive (and unmoved) for the transaction's life: the
  // commit may re-apply them to a fresh read of the table.
  Spans keep(const Napi::Value& v) {
    Spans out;
    if (v.IsUndefined() || v.IsNull()) return out;
    if (!v.IsArray()) throw Napi::TypeError::New(Env(), "an array of operation Buffers expected");
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value x = a.Get(i);
      if (!x.IsBuffer()) throw Napi::TypeError::New(Env(), "an array of operation Buffers expected");
      auto b = x.As<Napi::Buffer<uint8_t>>();
      buffers_.push_back(Napi::Persistent(b));
      out.emplace_back(b.Data(), b.Length());
    }
    return out;
  }

  Napi::Value Apply(const Napi::CallbackInfo& info) {
    auto* job = new Job(this, Kind::Apply, keep(info[0]));
    Napi::Promise pr = job->Promise();
    job->Queue();
    return pr;
  }

  // dump(chain | chains[] | null, rules: boolean, survey?: boolean)
  Napi::Value DumpJs(const Napi::CallbackInfo& info) {
    auto* job = new Job(this, Kind::Dump, {});
    if (info[0].IsString()) {
      job->chain = info[0].As<Napi::String>().Utf8Value();
      job->hasChain = true;
    } else if (info[0].IsArray()) {
      Napi::Array a = info[0].As<Napi::Array>();
      job->only.reserve(a.Length());
      for (uint32_t i = 0; i < a.Length(); i++) job->only.push_back(a.Get(i).ToString().Utf8Value());
      job->hasOnly = true;
    }
    job->survey = info.Length() > 2 && info[2].ToBoolean().Value();
    job->rules = info[1].ToBoolean().Value();
    Napi::Promise pr = job->Promise();
    job->Queue();
    return pr;
  }

  Napi::Value Commit(const Napi::CallbackInfo& info) {
    auto* job = new Job(this, Kind::Commit, keep(info[0]));
    Napi::Promise pr = job->Promise();
    job->Queue();
    return pr;
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    auto* job = new Job(this, Kind::Release, {});
    Napi::Promise pr = job->Promise();
    job->Queue();
    return pr;
  }

  std::unique_ptr<Tx> tx_;
  std::vector<Napi::Reference<Napi::Buffer<uint8_t>>> buffers_;
};

namespace {

// A job on a table outside any transaction (prefetch, dropSnapshot).
class TableJob : public Napi::AsyncWorker {
 public:
  TableJob(Napi::Env env, const Api* api, std::string table, bool drop)
      : Napi::AsyncWorker(env, "tsproxy:iptc"), api_(api), table_(std::move(table)), drop_(drop),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    if (drop_)
      dropSnapshot(api_, table_);
    else
      prefetch(api_, table_);
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  const Api* api_;
  std::string table_;
  bool drop_;
  Napi::Promise::Deferred deferred_;
};

// load(family) -> { ok: true, path } | { ok: false, error }
Napi::Value LoadFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = familyArg(info, 0);
  std::string error;
  const Api* api = load(family, &error);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", api != nullptr);
  if (api)
    o.Set("path", api->path);
  else
    o.Set("error", error);
  return o;
}

Napi::Value PrefetchFn(const Napi::CallbackInfo& info) {
  const Api* api = apiOrThrow(info.Env(), familyArg(info, 0));
  auto* job = new TableJob(info.Env(), api, tableArg(info, 1), false);
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

Napi::Value DropSnapshotFn(const Napi::CallbackInfo& info) {
  const Api* api = apiOrThrow(info.Env(), familyArg(info, 0));
  auto* job = new TableJob(info.Env(), api, tableArg(info, 1), true);
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

// tableInfo(family, table) -> { entries, size, validHooks, hookEntry, underflow } | { errno }
// One getsockopt that copies 84 bytes: cheap enough for the event loop.
Napi::Value TableInfoFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TableInfo ti;
  int e = tableInfo(familyArg(info, 0), tableArg(info, 1), &ti);
  Napi::Object o = Napi::Object::New(env);
  if (e) {
    o.Set("errno", e);
    return o;
  }
  o.Set("entries", ti.entries);
  o.Set("size", ti.size);
  o.Set("validHooks", ti.validHooks);
  Napi::Array he = Napi::Array::New(env, 5), uf = Napi::Array::New(env, 5);
  for (uint32_t i = 0; i < 5; i++) {
    he.Set(i, ti.hookEntry[i]);
    uf.Set(i, ti.underflow[i]);
  }
  o.Set("hookEntry", he);
  o.Set("underflow", uf);
  return o;
}

Napi::Value LayoutFn(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  for (auto& [k, v] : layout()) o.Set(k, Napi::Number::New(info.Env(), static_cast<double>(v)));
  return o;
}

}  // namespace

void initBinding(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("Transaction", Transaction::Define(env));
  o.Set("load", Napi::Function::New(env, LoadFn, "load"));
  o.Set("prefetch", Napi::Function::New(env, PrefetchFn, "prefetch"));
  o.Set("dropSnapshot", Napi::Function::New(env, DropSnapshotFn, "dropSnapshot"));
  o.Set("tableInfo", Napi::Function::New(env, TableInfoFn, "tableInfo"));
  o.Set("layout", Napi::Function::New(env, LayoutFn, "layout"));
  exports.Set("iptc", o);
}

}  // namespace iptc
