// Decompresses one Zstandard frame into a caller's buffer, on libuv's thread pool: the
// installer's reader of a seekable .zst (src/io/framed-zstd.ts) runs several at once, one
// frame each, inside the process. The same work by `zstd` processes cost two more copies of
// every byte through the kernel (into a spool file and out again); see docs/benchmarks.md.
//
// decompressFrame(src: Uint8Array, dst: Uint8Array): Promise<number>
//   src: the frame's compressed bytes; dst: room for its content. Resolves to the number of
//   bytes written into dst; rejects with an Error whose message is zstd's error name and
//   whose code is "ZSTD_ERROR". Both arrays are kept alive (and must not be written by
//   JavaScript) until the promise settles. ZSTD_decompress(3) checks the frame's content
//   checksum when the frame has one (zstd(1) writes them by default).
//
// decompressFirstFrame(src: Uint8Array, dst: Uint8Array): Promise<number>
//   The same for the first frame in src, ignoring the bytes after it: a qcow2 compressed
//   cluster is one frame followed by whatever fills its last 512-byte sector (qcow2.txt,
//   "Compressed Clusters Descriptor"). The frame's length is found by walking its block
//   headers (ZSTD_findFrameCompressedSize); a frame cut short or damaged is a ZSTD_ERROR.
//
// Built by node-gyp (binding.gyp) against Debian's libzstd (libzstd-dev).

#include <node_api.h>
#include <stdbool.h>
#include <stdlib.h>
#include <zstd.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref src_ref;
  napi_ref dst_ref;
  const void *src;
  size_t src_len;
  void *dst;
  size_t dst_len;
  bool first_only;
  size_t result;
} job_t;

// On a pool thread: no JavaScript values may be touched here.
static void execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  size_t src_len = j->src_len;
  if (j->first_only) {
    src_len = ZSTD_findFrameCompressedSize(j->src, j->src_len);
    if (ZSTD_isError(src_len)) {
      j->result = src_len;
      return;
    }
  }
  j->result = ZSTD_decompress(j->dst, j->dst_len, j->src, src_len);
}

// Back on the main thread.
static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  if (status != napi_ok || ZSTD_isError(j->result)) {
    napi_value msg, code, err;
    const char *what = status != napi_ok ? "cancelled" : ZSTD_getErrorName(j->result);
    napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, "ZSTD_ERROR", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &err);
    napi_reject_deferred(env, j->deferred, err);
  } else {
    napi_value n;
    napi_create_double(env, (double)j->result, &n);
    napi_resolve_deferred(env, j->deferred, n);
  }
  napi_delete_reference(env, j->src_ref);
  napi_delete_reference(env, j->dst_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

// The bytes of a Uint8Array (on an ArrayBuffer or a SharedArrayBuffer).
static bool bytes_of(napi_env env, napi_value v, void **ptr, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, len, ptr, &buffer, &offset) != napi_ok) return false;
  return type == napi_uint8_array;
}

static napi_value start(napi_env env, napi_callback_info info, bool first_only) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *src = NULL;
  size_t src_len = 0;
  void *dst = NULL;
  size_t dst_len = 0;
  if (argc < 2 || !bytes_of(env, argv[0], &src, &src_len) || !bytes_of(env, argv[1], &dst, &dst_len)) {
    napi_throw_type_error(env, NULL, first_only ? "decompressFirstFrame(src: Uint8Array, dst: Uint8Array)" : "decompressFrame(src: Uint8Array, dst: Uint8Array)");
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  j->src = src;
  j->src_len = src_len;
  j->dst = dst;
  j->dst_len = dst_len;
  j->first_only = first_only;
  napi_value promise, name;
  napi_create_reference(env, argv[0], 1, &j->src_ref);
  napi_create_reference(env, argv[1], 1, &j->dst_ref);
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "hwimage:zstd-frame", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static napi_value decompress_frame(napi_env env, napi_callback_info info) {
  return start(env, info, false);
}

static napi_value decompress_first_frame(napi_env env, napi_callback_info info) {
  return start(env, info, true);
}

// The libzstd version the addon runs with, e.g. "1.5.4".
static napi_value version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_string_utf8(env, ZSTD_versionString(), NAPI_AUTO_LENGTH, &v);
  return v;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "decompressFrame", NAPI_AUTO_LENGTH, decompress_frame, NULL, &fn);
  napi_set_named_property(env, exports, "decompressFrame", fn);
  napi_create_function(env, "decompressFirstFrame", NAPI_AUTO_LENGTH, decompress_first_frame, NULL, &fn);
  napi_set_named_property(env, exports, "decompressFirstFrame", fn);
  napi_create_function(env, "zstdVersion", NAPI_AUTO_LENGTH, version, NULL, &fn);
  napi_set_named_property(env, exports, "zstdVersion", fn);
  return exports;
}
