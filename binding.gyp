# The native part of hwimage: one Node-API addon (native/zstd-frames.c), built offline
# against this Node's headers and Debian's libzstd by scripts/build-native.sh.
{
  "targets": [
    {
      "target_name": "zstd_frames",
      "sources": ["native/zstd-frames.c"],
      "libraries": ["-lzstd"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
