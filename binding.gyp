# The native part of hwimage: two Node-API addons, built offline against this Node's headers
# by scripts/build-native.sh: native/zstd-frames.c (with Debian's libzstd) and
# native/send-file.c (sendfile(2) for serve's file bodies; libc only).
{
  "targets": [
    {
      "target_name": "zstd_frames",
      "sources": ["native/zstd-frames.c"],
      "libraries": ["-lzstd"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "send_file",
      "sources": ["native/send-file.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
