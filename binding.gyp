{
  "targets": [
    {
      "target_name": "tsproxy",
      "sources": [
        "native/addon.cc",
        "native/netlink/message.cc",
        "native/netlink/socket.cc",
        "native/netlink/codec.cc",
        "native/netlink/genl.cc",
        "native/netlink/binding.cc",
        "native/ipvs/ipvs.cc",
        "native/ipset/ipset.cc",
        "native/route/route.cc",
        "native/conntrack/conntrack.cc",
        "native/iptc/libiptc.cc",
        "native/iptc/table.cc",
        "native/iptc/binding.cc",
        "native/nftables/nftables.cc",
        "native/lock/lock.cc",
        "native/malloc/malloc.cc",
        "native/compat/libstdcxx.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags": ["-include", "<(module_root_dir)/native/compat/glibc.h"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
