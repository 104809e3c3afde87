// sendfile(2) for hwimage serve's file bodies (src/serve/send-range.ts): the kernel moves a
// file's pages from the page cache to a socket, where read(2) then write(2) copied every
// byte into the process and out again. Without it serve spent 7-9 times nginx's CPU per GiB
// served (docs/benchmarks.md, "serve at load").
//
// sendFileNonBlocking(socketFd: number, fileFd: number, offset: number, count: number): number
//   One sendfile(2) call on the main thread, on Node's socket, which libuv opened
//   non-blocking: it moves what the socket's buffer has room for and returns at once.
//   Returns the bytes sent (0 at the file's end), or -1 when the socket's buffer is full
//   (EAGAIN): the caller waits for the socket to be writable and calls again. Other errors
//   throw an Error whose code is the errno's name ("EPIPE", "ECONNRESET" …). The call never
//   waits for the network; it may wait for the disk when the file's pages are not cached,
//   which is why the caller passes bounded counts.
//
// Built by node-gyp (binding.gyp, target send_file); needs nothing beyond libc.

#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>
#include <sys/sendfile.h>

static napi_value fail(napi_env env, int err) {
  napi_value msg, code, e;
  const char *name = strerrorname_np(err);
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name ? name : "ESENDFILE", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &e);
  napi_throw(env, e);
  return NULL;
}

static bool integer_arg(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return false;
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d >= 0 && d <= 9007199254740991.0) || d != (double)(int64_t)d) return false;
  *out = (int64_t)d;
  return true;
}

static napi_value send_file_non_blocking(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t out_fd, in_fd, offset, count;
  if (argc < 4 || !integer_arg(env, argv[0], &out_fd) || !integer_arg(env, argv[1], &in_fd) ||
      !integer_arg(env, argv[2], &offset) || !integer_arg(env, argv[3], &count) || out_fd > INT32_MAX ||
      in_fd > INT32_MAX) {
    napi_throw_type_error(env, NULL,
                          "sendFileNonBlocking(socketFd: number, fileFd: number, offset: number, count: number)");
    return NULL;
  }
  off_t off = (off_t)offset;
  ssize_t n;
  do {
    n = sendfile((int)out_fd, (int)in_fd, &off, (size_t)count);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) n = -1;
  else if (n < 0) return fail(env, errno);
  napi_value r;
  napi_create_double(env, (double)n, &r);
  return r;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "sendFileNonBlocking", NAPI_AUTO_LENGTH, send_file_non_blocking, NULL, &fn);
  napi_set_named_property(env, exports, "sendFileNonBlocking", fn);
  return exports;
}
