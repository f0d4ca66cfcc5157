{
  "targets": [
    {
      "target_name": "dtmesh_mac",
      "sources": ["mac.c", "lane.c"],
      "cflags": ["-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
