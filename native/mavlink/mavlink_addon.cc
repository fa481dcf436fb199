// JavaScript glue of the native MAVLink parser (native/mavlink/parse.h):
//
//   new MavlinkDialect(ids: Uint32Array, lens: Uint8Array /* crc_extra,min,max per id */,
//                      targets: Int16Array /* target_system_ofs, target_component_ofs per id */)
//   new MavlinkParser(dialect, forwardUnknown: boolean, acceptV1: boolean)
//     .createFramer()  -> a framer external for StreamSocket.setFramer (stream
//                         links: frames with tag = msgid, payloadOffset = header)
//     .parseBatch(ring: Uint8Array, spans: Uint32Array /* offset,len pairs */,
//                 first: number, count: number, out: Uint32Array) -> packed
//                         datagram mode over received UDP datagrams; see ParseBatch
//     .stats(out: Float64Array)  counters (parse.h Counters, in that order)
//     .setSigningKey(key: Uint8Array(32) | null) -> generation
//                         signed frames are then checked against the key
//                         (see SigningKey below); null: not checked
//   MavlinkDialect.sha256(data, impl 0 auto | 1 portable | 2 CPU instructions (SHA-NI, ARMv8 SHA2))
//                         -> Uint8Array(32), undefined when impl 2 is missing
//                         (test hook of native/util/sha256.h)
//
// Counters are shared by the datagram parser and every framer the handle
// created (one per connection), as relaxed atomics: framers run on the I/O
// thread and publish deltas after each step; JavaScript reads them.
#include <napi.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>

#include "framer.h"
#include "mavlink/mavlink_addon.h"
#include "mavlink/parse.h"
#include "util/sha256.h"

namespace onbus::mav {

namespace {

constexpr napi_type_tag kDialectTag = {0x6f6e6275736d6176ULL, 0x6469616c6563743aULL};
constexpr int kCounterWords = 5 + static_cast<int>(Reject::kCount);

struct SharedCounters {
  std::atomic<uint64_t> v[kCounterWords] = {};
};

inline void Flatten(const Counters& c, uint64_t* o) {
  o[0] = c.bytes_in;
  o[1] = c.bytes_accepted;
  o[2] = c.bytes_discarded;
  o[3] = c.frames;
  o[4] = c.unknown_id;
  for (int i = 0; i < static_cast<int>(Reject::kCount); i++) o[5 + i] = c.rejected[i];
}

// Adds what changed in `now` since `last` to the shared counters.
class Publisher {
 public:
  explicit Publisher(std::shared_ptr<SharedCounters> shared) : shared_(std::move(shared)) {}
  void Publish(const Counters& c) {
    uint64_t now[kCounterWords];
    Flatten(c, now);
    for (int i = 0; i < kCounterWords; i++) {
      if (now[i] != last_[i]) {
        shared_->v[i].fetch_add(now[i] - last_[i], std::memory_order_relaxed);  // wraps right for the bad_crc-- case
        last_[i] = now[i];
      }
    }
  }

 private:
  std::shared_ptr<SharedCounters> shared_;
  uint64_t last_[kCounterWords] = {};
};

// The signing key of a parser handle, shared by its datagram parser (JS
// thread) and its framers (I/O thread). Each setSigningKey() is a new
// generation; a framer reports which generation checked a frame, so that
// JavaScript uses the result only when the key has not changed since (else
// it checks the frame itself): the key that counts is the one current when
// the frame is delivered, as with the JavaScript parser.
struct SigningKey {
  std::mutex mu;
  uint8_t key[kSigningKeyLength] = {};
  bool on = false;
  uint32_t gen = 0;                // guarded by mu
  std::atomic<uint32_t> seen{0};   // == gen, readable without the lock
};

// A user's cached copy of the key (one per framer / datagram parser).
class KeyCache {
 public:
  explicit KeyCache(std::shared_ptr<SigningKey> k) : shared_(std::move(k)) {}
  // Refreshes the copy when the key changed; returns whether a key is set.
  bool Refresh() {
    if (shared_->seen.load(std::memory_order_acquire) != gen_) {
      std::lock_guard<std::mutex> lock(shared_->mu);
      std::memcpy(key_, shared_->key, sizeof key_);
      on_ = shared_->on;
      gen_ = shared_->gen;
    }
    return on_;
  }
  const uint8_t* key() const { return key_; }
  uint32_t gen() const { return gen_; }

 private:
  std::shared_ptr<SigningKey> shared_;
  uint8_t key_[kSigningKeyLength] = {};
  bool on_ = false;
  uint32_t gen_ = 0;
};

// Framer tag bits 24..31 (the msgid takes 0..23): 0 = signature not checked;
// else bit 7 = signature good, bits 0..6 = key generation, (gen - 1) % 127 + 1.
inline uint32_t SigStatus(uint32_t gen, bool good) {
  return ((gen - 1) % 127 + 1) | (good ? 0x80u : 0u);
}

class MavlinkFramer final : public Framer {
 public:
  MavlinkFramer(std::shared_ptr<const Dialect> d, ParserOptions o, std::shared_ptr<SharedCounters> shared,
                std::shared_ptr<SigningKey> key)
      : parser_(std::move(d), o), pub_(std::move(shared)), key_(std::move(key)) {}
  ~MavlinkFramer() override {
    parser_.Reset();  // bytes still pending when the connection ends: discarded
    pub_.Publish(parser_.counters());
  }

  FrameStep Next(const uint8_t* data, size_t len) override {
    FrameInfo fi;
    Step s = parser_.Next(data, len, &fi, false);
    pub_.Publish(parser_.counters());
    switch (s.kind) {
      case Step::kFrame: {
        uint32_t tag = fi.msgid;
        if (fi.is_signed && key_.Refresh())
          tag |= SigStatus(key_.gen(), SignatureMatches(key_.key(), data, s.size)) << 24;
        return FrameStep::Frame(s.size, s.size, fi.version == 2 ? kHeaderV2 : kHeaderV1, tag);
      }
      case Step::kDiscard: return FrameStep::Discard(s.size, s.reason < 0 ? kReasonGarbage : kReasonNone);
      default: return FrameStep::NeedMore(s.size);
    }
  }
  void Reset() override {
    parser_.Reset();
    pub_.Publish(parser_.counters());
  }

 private:
  Parser parser_;
  Publisher pub_;
  KeyCache key_;
};

class MavlinkDialect : public Napi::ObjectWrap<MavlinkDialect> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "MavlinkDialect",
                       {InstanceMethod<&MavlinkDialect::Size>("size"), StaticMethod<&MavlinkDialect::Sha256Hook>("sha256")});
  }
  explicit MavlinkDialect(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MavlinkDialect>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsTypedArray()) {
      Napi::TypeError::New(env, "MavlinkDialect(ids: Uint32Array, lens: Uint8Array, targets: Int16Array)").ThrowAsJavaScriptException();
      return;
    }
    auto ids = info[0].As<Napi::Uint32Array>();
    auto lens = info[1].As<Napi::Uint8Array>();
    auto targets = info[2].As<Napi::Int16Array>();
    size_t n = ids.ElementLength();
    if (lens.ElementLength() < n * 3 || targets.ElementLength() < n * 2) {
      Napi::RangeError::New(env, "MavlinkDialect: table lengths do not match the ids").ThrowAsJavaScriptException();
      return;
    }
    auto d = std::make_shared<Dialect>();
    for (size_t i = 0; i < n; i++) {
      MsgInfo m;
      m.crc_extra = lens[i * 3];
      m.min_len = lens[i * 3 + 1];
      m.max_len = lens[i * 3 + 2];
      m.target_system_ofs = targets[i * 2];
      m.target_component_ofs = targets[i * 2 + 1];
      d->Set(ids[i], m);
    }
    dialect_ = std::move(d);
    napi_type_tag_object(env, info.This(), &kDialectTag);
  }
  std::shared_ptr<const Dialect> dialect() const { return dialect_; }

 private:
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(dialect_ ? dialect_->size() : 0));
  }
  static Napi::Value Sha256Hook(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray()) {
      Napi::TypeError::New(env, "sha256(data: Uint8Array, impl?: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto data = info[0].As<Napi::Uint8Array>();
    const uint32_t impl = info.Length() >= 2 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
    if (impl == 2 && !Sha256::HasHardware()) return env.Undefined();
    auto out = Napi::Uint8Array::New(env, Sha256::kDigestLength);
    Sha256::Digest(data.Data(), data.ElementLength(), out.Data(),
                   impl == 1 ? Sha256::Impl::kPortable : impl == 2 ? Sha256::Impl::kHardware : Sha256::Impl::kAuto);
    return out;
  }
  std::shared_ptr<const Dialect> dialect_;
};

class MavlinkParserWrap : public Napi::ObjectWrap<MavlinkParserWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "MavlinkParser",
                       {
                           InstanceMethod<&MavlinkParserWrap::CreateFramer>("createFramer"),
                           InstanceMethod<&MavlinkParserWrap::ParseBatch>("parseBatch"),
                           InstanceMethod<&MavlinkParserWrap::Stats>("stats"),
                           InstanceMethod<&MavlinkParserWrap::SetSigningKey>("setSigningKey"),
                       });
  }
  explicit MavlinkParserWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MavlinkParserWrap>(info) {
    Napi::Env env = info.Env();
    bool ok = false;
    if (info.Length() < 1 || !info[0].IsObject() ||
        napi_check_object_type_tag(env, info[0], &kDialectTag, &ok) != napi_ok || !ok) {
      Napi::TypeError::New(env, "MavlinkParser(dialect: MavlinkDialect, forwardUnknown, acceptV1)").ThrowAsJavaScriptException();
      return;
    }
    dialect_ = MavlinkDialect::Unwrap(info[0].As<Napi::Object>())->dialect();
    options_.forward_unknown = !(info.Length() >= 2 && info[1].IsBoolean() && !info[1].As<Napi::Boolean>().Value());
    options_.accept_v1 = !(info.Length() >= 3 && info[2].IsBoolean() && !info[2].As<Napi::Boolean>().Value());
    shared_ = std::make_shared<SharedCounters>();
    key_ = std::make_shared<SigningKey>();
    datagram_ = std::make_unique<Parser>(dialect_, options_);
    datagram_pub_ = std::make_unique<Publisher>(shared_);
    datagram_key_ = std::make_unique<KeyCache>(key_);
  }

 private:
  Napi::Value CreateFramer(const Napi::CallbackInfo& info) {
    auto f = std::make_unique<MavlinkFramer>(dialect_, options_, shared_, key_);
    return WrapFramer(info.Env(), std::move(f));
  }

  // parseBatch(ring, spans, first, count, out) -> number
  // Parses datagrams first .. first+count-1 (spans[2i] = offset in ring,
  // spans[2i+1] = length) and writes one record of kOutWords words per frame:
  //   [0] datagram index  [1] offset in ring  [2] length  [3] msgid
  //   [4] version | payload_len << 8 | incompat << 16 | compat << 24
  //   [5] sysid | compid << 8 | seq << 16 | flags << 24, flags: known 1,
  //       signed 2, signature checked with the key set now 4, and good 8
  // Stops before a datagram whose frames might not fit in `out`. Returns
  // frames + datagrams_done * 2^21 (a datagram holds < 2^13 frames, out < 2^21 records).
  Napi::Value ParseBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[4].IsTypedArray()) {
      Napi::TypeError::New(env, "parseBatch(ring, spans, first, count, out)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto ring = info[0].As<Napi::Uint8Array>();
    auto spans = info[1].As<Napi::Uint32Array>();
    uint32_t first = info[2].As<Napi::Number>().Uint32Value();
    uint32_t count = info[3].As<Napi::Number>().Uint32Value();
    auto out = info[4].As<Napi::Uint32Array>();
    const uint8_t* base = ring.Data();
    const size_t ring_len = ring.ElementLength();
    const uint32_t* sp = spans.Data();
    const size_t nspans = spans.ElementLength() / 2;
    uint32_t* o = out.Data();
    const size_t cap = std::min<size_t>(out.ElementLength() / kOutWords, (1u << 21) - 1);
    size_t nout = 0;
    uint32_t done = 0;
    for (uint32_t k = first; k < first + count && k < nspans; k++) {
      const uint32_t off = sp[2 * k];
      uint32_t len = sp[2 * k + 1];
      if (off > ring_len) break;
      if (len > ring_len - off) len = static_cast<uint32_t>(ring_len - off);
      if (nout + len / 12 + 1 > cap && done > 0) break;  // a frame is at least 12 bytes
      if (nout + len / 12 + 1 > cap) {
        Napi::RangeError::New(env, "parseBatch: output too small for one datagram").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      const bool keyed = datagram_key_->Refresh();
      datagram_->ParseDatagram(base + off, len, [&](const uint8_t* frame, const FrameInfo& fi) {
        uint32_t* r = o + nout * kOutWords;
        r[0] = k;
        r[1] = off + fi.offset;
        r[2] = fi.length;
        r[3] = fi.msgid;
        r[4] = fi.version | (uint32_t{fi.payload_len} << 8) | (uint32_t{fi.incompat_flags} << 16) |
               (uint32_t{fi.compat_flags} << 24);
        uint32_t flags = (fi.known ? 1 : 0) | (fi.is_signed ? 2 : 0);
        if (fi.is_signed && keyed) flags |= SignatureMatches(datagram_key_->key(), frame, fi.length) ? 12 : 4;
        r[5] = fi.sysid | (uint32_t{fi.compid} << 8) | (uint32_t{fi.seq} << 16) | (flags << 24);
        nout++;
      });
      done++;
    }
    datagram_pub_->Publish(datagram_->counters());
    return Napi::Number::New(env, static_cast<double>(nout) + static_cast<double>(done) * (1u << 21));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    auto out = info[0].As<Napi::Float64Array>();
    size_t n = std::min<size_t>(out.ElementLength(), kCounterWords);
    for (size_t i = 0; i < n; i++)
      out[i] = static_cast<double>(static_cast<int64_t>(shared_->v[i].load(std::memory_order_relaxed)));
    return info.Env().Undefined();
  }

  // setSigningKey(key: Uint8Array(32) | null) -> generation (1, 2, ...)
  Napi::Value SetSigningKey(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const bool clear = info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined();
    if (!clear && (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
                   info[0].As<Napi::Uint8Array>().ElementLength() != kSigningKeyLength)) {
      Napi::TypeError::New(env, "setSigningKey(key: Uint8Array(32) | null)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint32_t gen;
    {
      std::lock_guard<std::mutex> lock(key_->mu);
      if (clear) {
        std::memset(key_->key, 0, sizeof key_->key);
        key_->on = false;
      } else {
        std::memcpy(key_->key, info[0].As<Napi::Uint8Array>().Data(), kSigningKeyLength);
        key_->on = true;
      }
      gen = ++key_->gen;
      if (gen == 0) gen = ++key_->gen;  // 0 means "no key yet" to the caches
      key_->seen.store(gen, std::memory_order_release);
    }
    return Napi::Number::New(env, gen);
  }

  static constexpr size_t kOutWords = 6;
  std::shared_ptr<const Dialect> dialect_;
  ParserOptions options_;
  std::shared_ptr<SharedCounters> shared_;
  std::unique_ptr<Parser> datagram_;
  std::unique_ptr<Publisher> datagram_pub_;
  std::shared_ptr<SigningKey> key_;
  std::unique_ptr<KeyCache> datagram_key_;
};

}  // namespace

Napi::Function InitMavlinkDialect(Napi::Env env) { return MavlinkDialect::Init(env); }
Napi::Function InitMavlinkParser(Napi::Env env) { return MavlinkParserWrap::Init(env); }

std::shared_ptr<const Dialect> DialectOf(Napi::Env env, Napi::Value v) {
  bool ok = false;
  if (!v.IsObject() || napi_check_object_type_tag(env, v, &kDialectTag, &ok) != napi_ok || !ok) return nullptr;
  MavlinkDialect* d = MavlinkDialect::Unwrap(v.As<Napi::Object>());
  return d != nullptr ? d->dialect() : nullptr;
}

}  // namespace onbus::mav
