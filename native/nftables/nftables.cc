// nf_tables over nfnetlink, read-only and only as far as lib/iptables needs to
// tell whether a node's iptables rules live in nf_tables (iptables-nft) rather
// than in x_tables: dumps of tables and chains. Names the messages and
// attributes of <linux/netfilter/nf_tables.h>.
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "../netlink/codec.h"

namespace nl {

namespace {

class NftablesCodec : public Codec {
 public:
  // { cmd: 'getTables' | 'getChains' }, dumps of every table / chain of `family`
  // (NFPROTO_UNSPEC: all of them).
  void encode(const Napi::Object& op, uint16_t family, Builder& b, Request& req) const override {
    std::string cmd = field::str(op, "cmd");
    uint8_t msg;
    if (cmd == "getTables")
      msg = NFT_MSG_GETTABLE;
    else if (cmd == "getChains")
      msg = NFT_MSG_GETCHAIN;
    else
      throw Napi::TypeError::New(op.Env(), "nftables: unknown cmd " + cmd);
    req.dump = true;
    size_t m = b.begin(static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg), NLM_F_REQUEST | NLM_F_DUMP);
    auto g = reinterpret_cast<nfgenmsg*>(b.at(b.extra(sizeof(nfgenmsg))));
    g->nfgen_family = static_cast<uint8_t>(family);
    g->version = NFNETLINK_V0;
    g->res_id = 0;
    b.end(m);
  }

  Napi::Value decode(Napi::Env env, const nlmsghdr* h) const override {
    if ((h->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES) return env.Undefined();
    auto m = nl::body<nfgenmsg>(h);
    if (!m.hdr) return env.Undefined();
    const nfgenmsg* g = m.hdr;
    const uint8_t* body = m.attrs;
    size_t len = m.len;
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", g->nfgen_family);
    switch (h->nlmsg_type & 0xff) {
      case NFT_MSG_NEWTABLE: {
        Attrs a(body, len, NFTA_TABLE_MAX);
        o.Set("kind", "table");
        o.Set("name", a.str(NFTA_TABLE_NAME));
        o.Set("chains", a.be32(NFTA_TABLE_USE));
        if (a.bad()) throw Malformed{"table"};
        break;
      }
      case NFT_MSG_NEWCHAIN: {
        Attrs a(body, len, NFTA_CHAIN_MAX);
        o.Set("kind", "chain");
        o.Set("table", a.str(NFTA_CHAIN_TABLE));
        o.Set("name", a.str(NFTA_CHAIN_NAME));
        o.Set("base", a.has(NFTA_CHAIN_HOOK));
        if (a.bad()) throw Malformed{"chain"};
        break;
      }
      default:
        return env.Undefined();
    }
    return o;
  }
};

}  // namespace

const Codec* nftablesCodec() {
  static NftablesCodec c;
  return &c;
}

}  // namespace nl
