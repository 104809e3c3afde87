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
// waitWritable(socketFd: number, callback: (status: number) => void): Waiter
//   Calls back once, on the main thread, when the socket can take more bytes (status 0) or
//   has failed or closed (a negative libuv error code, or 0 with the next sendfile throwing):
//   how the caller waits after EAGAIN without handing bytes to Node's stream to get the
//   wait from its write callback. libuv keeps one watcher per fd, and Node's is the socket's
//   reader; so the wait polls a dup(2) of the fd (the same socket, its own epoll
//   registration) for writability and closes it when done. Not for a peer's half-close
//   (EPOLLRDHUP): level-triggered, it would call back at once again and again while the
//   socket stays full; errors and hang-ups call back, as epoll reports them always.
// cancelWait(waiter: Waiter): undefined
//   Stops a wait that has not called back (the response closed meanwhile); the callback is
//   never called, and the dup'd fd is closed (it would otherwise keep the connection open
//   after Node closed its own fd). Cancelling a finished wait does nothing.
//
// Built by node-gyp (binding.gyp, target send_file); needs nothing beyond libc and the
// libuv that Node itself exports.

#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include <uv.h>

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

// A wait for writability. Freed when both the libuv handle has closed and the JS object
// that names it has been collected (refs counts the two).
typedef struct {
  uv_poll_t poll;
  int fd;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int refs;
  bool closing;
} waiter_t;

static void release(waiter_t *w) {
  if (--w->refs == 0) free(w);
}

static void on_closed(uv_handle_t *handle) {
  waiter_t *w = handle->data;
  close(w->fd);
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->context);
  release(w);
}

// Stops polling and closes the handle (then the dup'd fd), once.
static void finish(waiter_t *w) {
  if (w->closing) return;
  w->closing = true;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  waiter_t *w = handle->data;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value callback, recv, arg, result;
  napi_get_reference_value(env, w->callback, &callback);
  napi_get_global(env, &recv);
  napi_create_int32(env, status, &arg);
  // Closed before the call, so that the callback may start the next wait on the same socket;
  // the reference and the async context live until on_closed, a later turn of the loop.
  finish(w);
  if (napi_make_callback(env, w->context, recv, callback, 1, &arg, &result) == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
  napi_close_handle_scope(env, scope);
}

static void on_collected(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  release(data);
}

static napi_value wait_writable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t fd;
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  if (argc < 2 || !integer_arg(env, argv[0], &fd) || fd > INT32_MAX || t != napi_function) {
    napi_throw_type_error(env, NULL, "waitWritable(socketFd: number, callback: (status: number) => void)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "waitWritable: no event loop");
    return NULL;
  }
  int dup_fd = dup((int)fd);
  if (dup_fd < 0) return fail(env, errno);
  waiter_t *w = calloc(1, sizeof *w);
  if (!w) {
    close(dup_fd);
    return fail(env, ENOMEM);
  }
  w->fd = dup_fd;
  w->env = env;
  w->refs = 2;
  int rc = uv_poll_init_socket(loop, &w->poll, dup_fd);
  if (rc != 0) {
    close(dup_fd);
    free(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  w->poll.data = w;
  napi_value name, object;
  napi_create_reference(env, argv[1], 1, &w->callback);
  napi_create_string_utf8(env, "hwimage.waitWritable", NAPI_AUTO_LENGTH, &name);
  napi_create_object(env, &object);
  napi_async_init(env, object, name, &w->context);
  napi_wrap(env, object, w, on_collected, NULL, NULL);
  rc = uv_poll_start(&w->poll, UV_WRITABLE, on_poll);
  if (rc != 0) {
    finish(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  return object;
}

static napi_value cancel_wait(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < 1 || napi_unwrap(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "cancelWait(waiter): not a waiter from waitWritable");
    return NULL;
  }
  finish(data);
  return NULL;
}

NAPI_MODULE_INIT() {
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"sendFileNonBlocking", send_file_non_blocking},
      {"waitWritable", wait_writable},
      {"cancelWait", cancel_wait},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  return exports;
}
