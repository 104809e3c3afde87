// A small DOM builder: h('tr', { class: 'x', dataset: { mac } }, 'text', child, [more]).
// Text is always a text node (never parsed as HTML), so what the API says is shown as written.

/** An element with properties, attributes, listeners (onclick …) and children. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') el.className = v
    else if (k === 'dataset') Object.assign(el.dataset, v)
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (k === 'value' || k === 'max' || k === 'checked' || k === 'selected') el[k] = v
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  append(el, children)
  return el
}

/** Appends children: strings and numbers as text, arrays flattened, null and undefined skipped. */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren()
  return append(el, children)
}
