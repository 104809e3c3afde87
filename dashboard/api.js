// The dashboard's one way to serve: the operator JSON API (docs/deploy.md, "API") and its
// live stream (GET /api/v1/stream, Server-Sent Events). The operator token, when serve
// has one, is asked for when the API answers 401, kept in this tab's sessionStorage, and
// sent as `Authorization: Bearer`; the stream, which EventSource opens without headers,
// gets it as `?access_token=` (serve's log redacts it).

const KEY = 'hwimage.operatorToken'

/** An API refusal: its status, message and hint as serve wrote them. */
export class ApiError extends Error {
  constructor(status, message, hint) {
    super(message)
    this.status = status
    this.hint = hint
  }
}

export function operatorToken() {
  return sessionStorage.getItem(KEY)
}

export function signOut() {
  sessionStorage.removeItem(KEY)
  authorized = false
  stream?.close()
  stream = undefined
}

let asking
/** Shows the sign-in dialog (once, however many requests wait for it) and resolves when a token was given. */
function askToken(message) {
  asking ??= new Promise((resolve) => {
    const dialog = document.getElementById('sign-in')
    const form = dialog.querySelector('form')
    const input = form.elements.token
    dialog.querySelector('[data-role=message]').textContent = message
    input.value = ''
    const submit = (ev) => {
      ev.preventDefault()
      const t = input.value.trim()
      if (!t) return
      sessionStorage.setItem(KEY, t)
      form.removeEventListener('submit', submit)
      dialog.close()
      asking = undefined
      resolve()
    }
    form.addEventListener('submit', submit)
    dialog.showModal()
    input.focus()
  })
  return asking
}

/** A JSON API call; a 401 (or a 403 for a wrong token) asks for the operator token and tries again. */
export async function api(path, { method = 'GET', body } = {}) {
  for (;;) {
    const token = operatorToken()
    const headers = { accept: 'application/json' }
    if (token) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    let res
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    } catch (e) {
      throw new ApiError(0, `Cannot reach serve: ${e.message}`)
    }
    const doc = await res.json().catch(() => null)
    if (res.status === 401) {
      await askToken('serve asks for the operator token (operator_token in its config).')
      continue
    }
    if (res.status === 403 && token && /wrong operator token/.test(doc?.error?.message ?? '')) {
      sessionStorage.removeItem(KEY)
      await askToken('That token is not the operator token. Try again.')
      continue
    }
    if (!res.ok) throw new ApiError(res.status, doc?.error?.message ?? `serve answered ${res.status}`, doc?.error?.hint)
    // The API took this token (or needs none): the stream will too.
    if (!authorized) {
      authorized = true
      if (listeners.size) openStream()
    }
    return doc
  }
}

// The live stream: one EventSource for the page, shared by whatever view is open.
const listeners = new Set()
let stream
let authorized = false
let statusListener = () => {}

/** Calls `fn(type, data)` for every stream message ("hello", "machine", "machine-deleted", "event"); returns an unsubscribe. */
export function subscribe(fn) {
  listeners.add(fn)
  // Not before the API has answered once: EventSource cannot show the sign-in, a refusal only closes it.
  if (authorized) openStream()
  return () => listeners.delete(fn)
}

/** Tells `fn` when the stream is "live", "connecting" or "offline". */
export function onStreamStatus(fn) {
  statusListener = fn
}

function emit(type, ev) {
  let data
  try {
    data = JSON.parse(ev.data)
  } catch {
    return
  }
  for (const l of [...listeners]) l(type, data)
}

function openStream() {
  if (stream) return
  const token = operatorToken()
  const es = new EventSource(`/api/v1/stream${token ? `?access_token=${encodeURIComponent(token)}` : ''}`)
  stream = es
  statusListener('connecting')
  es.addEventListener('open', () => statusListener('live'))
  for (const type of ['hello', 'machine', 'machine-deleted', 'event']) es.addEventListener(type, (ev) => emit(type, ev))
  es.addEventListener('error', () => {
    // A dropped connection: EventSource reconnects by itself (CONNECTING). A refusal (an HTTP
    // error, e.g. serve restarted with another token) closes it: check the token through the
    // API, which asks for it if needed, and open a new stream.
    if (es.readyState === EventSource.CLOSED) {
      if (stream === es) stream = undefined
      statusListener('offline')
      setTimeout(() => {
        api('/api/v1/images')
          .catch(() => {})
          .finally(() => {
            if (listeners.size) openStream()
          })
      }, 3000)
    } else statusListener('connecting')
  })
}
