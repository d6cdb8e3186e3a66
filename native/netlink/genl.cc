// The generic netlink controller ("nlctrl"): resolves a family name such as
// "IPVS" to the message type the kernel assigned it at registration.
#include <linux/genetlink.h>

#include "codec.h"

namespace nl {

namespace {

class GenlCtrl : public Codec {
 public:
  void encode(const Napi::Object& op, uint16_t, Builder& b, Request&) const override {
    std::string cmd = field::str(op, "cmd");
    if (cmd != "getFamily") throw Napi::TypeError::New(op.Env(), "genl: unknown cmd " + cmd);
    size_t m = b.begin(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK);
    auto g = reinterpret_cast<genlmsghdr*>(b.at(b.extra(GENL_HDRLEN)));
    g->cmd = CTRL_CMD_GETFAMILY;
    g->version = 1;
    b.putString(CTRL_ATTR_FAMILY_NAME, field::str(op, "name"));
    b.end(m);
  }

  Napi::Value decode(Napi::Env env, const nlmsghdr* h) const override {
    auto m = body<genlmsghdr>(h);
    if (!m.hdr) return env.Undefined();
    Attrs a = m.table(CTRL_ATTR_MAX);
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", a.u16(CTRL_ATTR_FAMILY_ID));
    o.Set("name", a.str(CTRL_ATTR_FAMILY_NAME));
    o.Set("version", a.u32(CTRL_ATTR_VERSION));
    o.Set("maxAttr", a.u32(CTRL_ATTR_MAXATTR));
    // Without its id the family cannot be addressed: not a record to act on.
    if (a.bad() || !a.has(CTRL_ATTR_FAMILY_ID)) throw Malformed{"reply"};
    return o;
  }
};

}  // namespace

const Codec* genlCodec() {
  static GenlCtrl c;
  return &c;
}

}  // namespace nl
