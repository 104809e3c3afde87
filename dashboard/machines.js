// Machines: every machine serve knows, with its state, image, the live progress of an
// install, the time of each phase of its deploy, and its last error; filtered by state
// (#/machines?state=failed). Loaded from GET /api/v1/machines?phases=1, then kept current
// by the stream's "machine" messages; a "hello" (a new or resumed stream) loads it again.

import { api, subscribe } from './api.js'
import { h, replace } from './dom.js'
import { ago, duration, errorText, PHASES, progressParts } from './format.js'

export const STATES = ['new', 'enlisted', 'deploying', 'installed', 'deployed', 'failed']

/** The state as a badge. */
export function stateBadge(state) {
  return h('span', { class: `state state-${state}`, dataset: { field: 'state' } }, state)
}

/** The progress bar and its words, or null when the machine reports none. */
export function progressCell(machine) {
  const p = machine.state === 'deploying' ? progressParts(machine.progress) : null
  if (!p) return null
  return h(
    'div',
    { class: 'progress' },
    h('progress', {
      max: 1,
      value: p.fraction ?? 0,
      'aria-label': `${p.stage} ${p.fraction !== undefined ? Math.round(p.fraction * 100) + '%' : ''}`,
      dataset: { done: String(p.done), total: String(p.total ?? '') },
    }),
    h('span', { class: 'stage', dataset: { field: 'stage' } }, p.stage),
    ' ',
    h('span', { class: 'progress-text' }, p.text),
  )
}

/** The seconds of each phase known so far, as a short list. */
export function phaseList(phases) {
  const s = phases?.seconds ?? {}
  const items = PHASES.filter(([k]) => typeof s[k] === 'number').map(([k, label]) =>
    h('li', { dataset: { phase: k } }, h('span', { class: 'label' }, label), ' ', duration(s[k])),
  )
  return items.length ? h('ul', { class: 'phases' }, items) : null
}

export function machinesView(main, { state }) {
  const machines = new Map()
  const filters = h('nav', { class: 'filters', 'aria-label': 'filter by state' })
  const tbody = h('tbody')
  const empty = h('p', { class: 'empty', hidden: true })
  const failure = h('p', { class: 'error', hidden: true })
  main.append(
    h('h1', {}, 'Machines'),
    filters,
    failure,
    h(
      'table',
      { class: 'machines cards' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Name', 'MAC', 'State', 'Image', 'Progress', 'Phases', 'Last error', 'Updated'].map((t) => h('th', {}, t)),
        ),
      ),
      tbody,
    ),
    empty,
  )

  let frame = 0
  const render = () => {
    frame = 0
    const all = [...machines.values()].sort((a, b) => a.machine.name.localeCompare(b.machine.name))
    const counts = Object.fromEntries(STATES.map((s) => [s, 0]))
    for (const { machine } of all) counts[machine.state] = (counts[machine.state] ?? 0) + 1
    replace(
      filters,
      [['', 'all', all.length], ...STATES.map((s) => [s, s, counts[s]])].map(([value, label, n]) =>
        h(
          'a',
          {
            href: value ? `#/machines?state=${value}` : '#/machines',
            class: 'filter',
            dataset: { state: value || 'all' },
            'aria-current': value === state ? 'true' : undefined,
          },
          label,
          h('span', { class: 'count' }, String(n)),
        ),
      ),
    )
    const shown = all.filter(({ machine }) => !state || machine.state === state)
    replace(tbody, shown.map(row))
    empty.hidden = shown.length > 0
    empty.textContent = all.length
      ? `No machine is ${state}.`
      : 'No machines yet. A machine appears here when it network-boots or is assigned an image.'
  }
  const later = () => {
    frame ||= requestAnimationFrame(render)
  }

  // The list's answer was made when serve read it, and a stream message made later can reach
  // the page first (another connection): applied alone, the answer would put a machine back
  // as it was, until it changes again. So the messages heard while a load is under way are
  // applied again over its answer, in order (each carries its machine as the store had it
  // when the message was made, and a later change makes a later message). An older load's
  // answer, overtaken by a newer one ("hello"), is dropped.
  let loads = 0
  let heard = null
  const apply = (type, data) => {
    if (type === 'machine') machines.set(data.mac, { machine: data.machine, phases: data.phases })
    else if (type === 'machine-deleted') machines.delete(data.mac)
  }
  const load = async () => {
    const n = ++loads
    const since = []
    heard = since
    try {
      const doc = await api('/api/v1/machines?phases=1')
      if (n !== loads) return
      machines.clear()
      for (const m of doc.machines) machines.set(m.mac, { machine: m, phases: doc.phases?.[m.mac] })
      for (const [type, data] of since) apply(type, data)
      failure.hidden = true
    } catch (e) {
      if (n !== loads) return
      failure.hidden = false
      failure.textContent = e.message
    } finally {
      if (n === loads) heard = null
    }
    later()
  }

  const unsubscribe = subscribe((type, data) => {
    if (type === 'hello') return load()
    if (type !== 'machine' && type !== 'machine-deleted') return
    heard?.push([type, data])
    apply(type, data)
    later()
  })
  load()
  // "Updated … ago" moves on.
  const tick = setInterval(later, 5000)
  return () => {
    unsubscribe()
    clearInterval(tick)
    if (frame) cancelAnimationFrame(frame)
  }
}

function row({ machine: m, phases }) {
  const href = `#/machines/${encodeURIComponent(m.mac)}`
  return h(
    'tr',
    { dataset: { mac: m.mac, state: m.state } },
    h('td', { dataset: { label: 'Name', field: 'name' } }, h('a', { href }, m.name)),
    h('td', { dataset: { label: 'MAC', field: 'mac' }, class: 'mono' }, m.mac),
    h('td', { dataset: { label: 'State' } }, stateBadge(m.state)),
    h('td', { dataset: { label: 'Image', field: 'image' } }, m.image ?? '–'),
    h('td', { dataset: { label: 'Progress', field: 'progress' } }, progressCell(m)),
    h('td', { dataset: { label: 'Phases', field: 'phases' } }, phaseList(phases)),
    h(
      'td',
      { dataset: { label: 'Last error', field: 'error' }, class: m.error ? 'error' : undefined },
      m.error ? errorText(m.error) : '',
    ),
    h('td', { dataset: { label: 'Updated', field: 'updated' }, title: m.updated }, ago(m.updated)),
  )
}
