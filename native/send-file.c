// sendfile(2) for hwimage serve's file bodies (src/serve/send-range.ts): the kernel moves a
// file's pages from the page cache to a socket, where read(2) then write(2) copied every
// byte into the process and out again. Without it serve spent 7-9 times nginx's CPU per GiB
// served (docs/benchmarks.md, "serve at load").
//
// sendFile(socketFd, fileFd, start, end, onEvent): Transfer
//   Sends bytes [start, end) of fileFd to the TCP socket socketFd, on the event loop, as
//   nginx's workers do: a libuv poll on the socket for writability, and on each wake-up
//   sendfile(2) calls until the socket's buffer is full (EAGAIN) or TURN_BYTES have gone,
//   whichever is first (the other clients get their turn), then back to the loop. No
//   JavaScript runs between wake-ups: the loop that did this in JS (a sendfile call, then a
//   promise and a native wait per full socket) cost serve half again nginx's CPU per byte at
//   128 clients, and its wake-ups came late behind the garbage collector.
//   The socket is corked (TCP_CORK, nginx's tcp_nopush) while the transfer runs, so that
//   each call does not end in a short segment; it is uncorked when the transfer ends.
//   The transfer works on a dup(2) of socketFd: libuv keeps one watcher per fd (Node's is
//   the socket's reader), and the dup stays the same socket even if Node closes its fd and
//   the number is reused meanwhile. The caller keeps fileFd open until the transfer ends.
//   onEvent(state, sent, waits, error) is called on the main thread:
//     PROGRESS (0): every PROGRESS_BYTES sent, or a second after the last report if any
//       were (the caller's idle timer counts this);
//     DONE (1): all of it sent, the socket uncorked; the last call;
//     SHORT (2): the file ended before `end`; the last call;
//     FAILED (3): sendfile(2) or the poll failed (the client reset the connection …),
//       `error` an Error whose code is the errno's or libuv's name; the last call.
//   `sent` counts the bytes sent so far, `waits` the times the socket was full.
// cancel(transfer): undefined
//   Stops a transfer that has not ended (the response closed meanwhile): onEvent is not
//   called again, and the dup'd fd is closed (it would otherwise keep the connection open
//   after Node closed its own fd). Cancelling an ended transfer does nothing.
//
// Built by node-gyp (binding.gyp, target send_file); needs nothing beyond libc and the
// libuv that Node itself exports.

#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// At most per sendfile(2) call: a call may wait for the disk when the pages are not cached.
#define CALL_BYTES (256 * 1024)
// At most per wake-up, before the other sockets get theirs.
#define TURN_BYTES (4 * 1024 * 1024)
// How often the caller hears of progress while bytes flow: every so many bytes, or at the
// first wake-up that sent any after so long (a slow reader's idle timeout counts this).
#define PROGRESS_BYTES (8 * 1024 * 1024)
#define PROGRESS_MS 1000

enum { PROGRESS = 0, DONE = 1, SHORT = 2, FAILED = 3 };

static napi_value error_of(napi_env env, const char *code, const char *message) {
  napi_value msg, c, e;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, msg, &e);
  return e;
}

static napi_value errno_error(napi_env env, int err) {
  const char *name = strerrorname_np(err);
  return error_of(env, name ? name : "ESENDFILE", strerror(err));
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

// A transfer. Freed when both the libuv handle has closed and the JS object that names it
// has been collected (refs counts the two).
typedef struct {
  uv_poll_t poll;
  int sock;  // the dup, owned
  int file;  // the caller's
  off_t pos, end;
  double sent, reported, waits;
  uint64_t reported_at;  // uv_now(), ms
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int refs;
  bool closing;
} transfer_t;

static void release(transfer_t *t) {
  if (--t->refs == 0) free(t);
}

static void on_closed(uv_handle_t *handle) {
  transfer_t *t = handle->data;
  close(t->sock);
  napi_delete_reference(t->env, t->callback);
  napi_async_destroy(t->env, t->context);
  release(t);
}

// Stops polling and closes the handle (then the dup'd fd), once.
static void finish(transfer_t *t) {
  if (t->closing) return;
  t->closing = true;
  uv_poll_stop(&t->poll);
  uv_close((uv_handle_t *)&t->poll, on_closed);
}

// Calls onEvent; `error` is made in the callback's scope (NULL: none). A last event finishes
// the transfer first, so that the callback may start another on the same socket.
static void report(transfer_t *t, int state, int err, const char *uv_code, const char *uv_message) {
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value callback, recv, argv[4], result;
  napi_get_reference_value(env, t->callback, &callback);
  napi_get_global(env, &recv);
  napi_create_int32(env, state, &argv[0]);
  napi_create_double(env, t->sent, &argv[1]);
  napi_create_double(env, t->waits, &argv[2]);
  if (err) argv[3] = errno_error(env, err);
  else if (uv_code) argv[3] = error_of(env, uv_code, uv_message);
  else napi_get_undefined(env, &argv[3]);
  if (state != PROGRESS) finish(t);
  if (napi_make_callback(env, t->context, recv, callback, 4, argv, &result) == napi_pending_exception) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
  napi_close_handle_scope(env, scope);
}

static void set_cork(int fd, int on) {
  // Best effort: a socket that refuses it fails its next sendfile(2), which is reported.
  (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
}

static void on_writable(uv_poll_t *handle, int status, int events) {
  (void)events;
  transfer_t *t = handle->data;
  if (t->closing) return;
  if (status < 0) {
    // libuv says EBADF for epoll's EPOLLERR: the socket's own error says what happened.
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(t->sock, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) return report(t, FAILED, err, NULL, NULL);
    return report(t, FAILED, 0, uv_err_name(status), uv_strerror(status));
  }
  off_t turn = 0;
  while (t->pos < t->end && turn < TURN_BYTES) {
    off_t left = t->end - t->pos;
    ssize_t n = sendfile(t->sock, t->file, &t->pos, (size_t)(left < CALL_BYTES ? left : CALL_BYTES));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        t->waits++;
        break;
      }
      return report(t, FAILED, errno, NULL, NULL);
    }
    if (n == 0) return report(t, SHORT, 0, NULL, NULL);
    turn += n;
    t->sent += (double)n;
  }
  if (t->pos >= t->end) {
    set_cork(t->sock, 0);
    return report(t, DONE, 0, NULL, NULL);
  }
  uint64_t now = uv_now(handle->loop);
  if (t->sent - t->reported >= PROGRESS_BYTES || (t->sent > t->reported && now - t->reported_at >= PROGRESS_MS)) {
    t->reported = t->sent;
    t->reported_at = now;
    report(t, PROGRESS, 0, NULL, NULL);
  }
}

static void on_collected(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  release(data);
}

static napi_value send_file(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t sock, file, start, end;
  napi_valuetype type = napi_undefined;
  if (argc >= 5) napi_typeof(env, argv[4], &type);
  if (argc < 5 || !integer_arg(env, argv[0], &sock) || !integer_arg(env, argv[1], &file) ||
      !integer_arg(env, argv[2], &start) || !integer_arg(env, argv[3], &end) || sock > INT32_MAX ||
      file > INT32_MAX || end < start || type != napi_function) {
    napi_throw_type_error(env, NULL,
                          "sendFile(socketFd: number, fileFd: number, start: number, end: number, onEvent: function)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "sendFile: no event loop");
    return NULL;
  }
  int dup_fd = dup((int)sock);
  if (dup_fd < 0) {
    napi_throw(env, errno_error(env, errno));
    return NULL;
  }
  transfer_t *t = calloc(1, sizeof *t);
  if (!t) {
    close(dup_fd);
    napi_throw(env, errno_error(env, ENOMEM));
    return NULL;
  }
  t->sock = dup_fd;
  t->file = (int)file;
  t->pos = (off_t)start;
  t->end = (off_t)end;
  t->env = env;
  t->refs = 2;
  t->reported_at = uv_now(loop);
  int rc = uv_poll_init_socket(loop, &t->poll, dup_fd);
  if (rc != 0) {
    close(dup_fd);
    free(t);
    napi_throw(env, error_of(env, uv_err_name(rc), uv_strerror(rc)));
    return NULL;
  }
  t->poll.data = t;
  napi_value name, object;
  napi_create_reference(env, argv[4], 1, &t->callback);
  napi_create_string_utf8(env, "hwimage.sendFile", NAPI_AUTO_LENGTH, &name);
  napi_create_object(env, &object);
  napi_async_init(env, object, name, &t->context);
  napi_wrap(env, object, t, on_collected, NULL, NULL);
  set_cork(dup_fd, 1);
  // The first calls come at the loop's next poll, which sees the socket writable at once if it is.
  rc = uv_poll_start(&t->poll, UV_WRITABLE, on_writable);
  if (rc != 0) {
    finish(t);
    napi_throw(env, error_of(env, uv_err_name(rc), uv_strerror(rc)));
    return NULL;
  }
  return object;
}

static napi_value cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < 1 || napi_unwrap(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "cancel(transfer): not a transfer from sendFile");
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
      {"sendFile", send_file},
      {"cancel", cancel},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  return exports;
}
