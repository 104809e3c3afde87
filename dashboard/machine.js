// A machine's page (#/machines/MAC): its state and live progress, last error, the phases of
// its deploy, the pre-flight verdict, its inventory (PCI devices, disks with the one its hints
// choose, NICs, firmware), the install and first-boot reports, its events as a timeline,
// and the operator's actions (assign an image with a seed and disk hints, redeploy,
// forget) through the operator API. Everything comes from GET /api/v1/machines/MAC; the
// stream says when to read it again.

import { api, subscribe } from './api.js'
import { h, replace } from './dom.js'
import { bytes, duration, errorText, PHASES, time } from './format.js'
import { progressCell, stateBadge } from './machines.js'

/** PCI class and subclass (the first 4 of the 6 hex digits) → what it is, for the common ones. */
const PCI_CLASSES = {
  '0100': 'SCSI storage',
  '0101': 'IDE storage',
  '0104': 'RAID storage',
  '0106': 'SATA storage',
  '0107': 'SAS storage',
  '0108': 'NVMe storage',
  '0200': 'Ethernet',
  '0280': 'Network (other)',
  '0300': 'VGA display',
  '0600': 'Host bridge',
  '0601': 'ISA bridge',
  '0604': 'PCI bridge',
  '0780': 'Communication',
  '0c03': 'USB',
  '0c05': 'SMBus',
  '00ff': 'Unclassified',
}

const MILESTONES = [
  ['networkBoot', 'network boot'],
  ['deployEnvironmentUp', 'deploy environment up'],
  ['installStarted', 'install started'],
  ['installed', 'installed'],
  ['firstBoot', 'installed system booted'],
  ['reported', 'first-boot report'],
]

export function machineView(main, { mac }) {
  const el = {
    head: h('header', { class: 'machine-head' }),
    status: h('section', { class: 'status', 'aria-label': 'status' }),
    phases: h('section', { class: 'card', 'aria-labelledby': 'h-phases' }),
    preflight: h('section', { class: 'card', 'aria-labelledby': 'h-preflight' }),
    actions: h('section', { class: 'card actions', 'aria-labelledby': 'h-actions' }),
    inventory: h('section', { class: 'card wide', 'aria-labelledby': 'h-inventory' }),
    reports: h('section', { class: 'card wide', 'aria-labelledby': 'h-reports' }),
    timeline: h('section', { class: 'card wide', 'aria-labelledby': 'h-timeline' }),
    notice: h('p', { class: 'error', hidden: true, role: 'alert' }),
  }
  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/machines' }, '← Machines')),
    el.head,
    el.notice,
    el.status,
    h('div', { class: 'grid' }, el.phases, el.preflight, el.actions, el.inventory, el.reports, el.timeline),
  )
  const actions = actionsSection(el.actions, mac, {
    done: () => reload(),
    notice: (text) => showNotice(text),
  })

  let doc
  let gone = false
  const showNotice = (text) => {
    el.notice.hidden = !text
    el.notice.textContent = text ?? ''
  }

  const render = () => {
    const m = doc.machine
    replace(
      el.head,
      h('h1', {}, m.name, ' ', stateBadge(m.state)),
      h(
        'p',
        { class: 'meta' },
        h('span', { class: 'mono', dataset: { field: 'mac' } }, m.mac),
        ' · image ',
        h('b', { dataset: { field: 'image' } }, m.image ?? 'none'),
        m.hasSeed ? ' · with a seed' : ' · no seed',
        m.diskHints.length ? ` · disk hints ${m.diskHints.join(', ')}` : '',
        ` · ${m.source}`,
      ),
    )
    renderStatus()
    replace(el.phases, h('h2', { id: 'h-phases' }, 'Phases'), phasesTable(doc.phases))
    replace(el.preflight, h('h2', { id: 'h-preflight' }, 'Pre-flight check'), preflightVerdict(currentEvents(doc)))
    replace(el.inventory, h('h2', { id: 'h-inventory' }, 'Inventory'), inventoryView(doc))
    replace(el.reports, h('h2', { id: 'h-reports' }, 'Reports'), reportsView(m))
    replace(el.timeline, h('h2', { id: 'h-timeline' }, 'Events'), timelineView(doc.events))
    actions.update(m)
  }
  const renderStatus = () => {
    const m = doc.machine
    const e = m.error
    replace(
      el.status,
      progressCell(m),
      e
        ? h(
            'div',
            { class: 'failure', dataset: { field: 'error' } },
            h('p', {}, h('b', {}, e.code ?? 'failed'), ': ', e.message ?? ''),
            e.logTail ? h('details', {}, h('summary', {}, 'log tail'), h('pre', {}, String(e.logTail))) : null,
          )
        : null,
    )
  }

  let inflight = false
  let again = false
  let timer = 0
  const reload = async () => {
    if (inflight) {
      again = true
      return
    }
    inflight = true
    try {
      doc = await api(`/api/v1/machines/${encodeURIComponent(mac)}`)
      gone = false
      showNotice('')
      render()
    } catch (e) {
      if (e.status === 404) showGone()
      else showNotice(e.message)
    } finally {
      inflight = false
      if (again) {
        again = false
        reload()
      }
    }
  }
  // Many changes in a second (progress) are one read of the machine.
  const reloadSoon = () => {
    timer ||= setTimeout(() => {
      timer = 0
      reload()
    }, 500)
  }

  const showGone = () => {
    gone = true
    replace(el.head, h('h1', {}, mac))
    showNotice(`serve knows no machine ${mac} (it was forgotten, or has not booted yet).`)
  }

  const unsubscribe = subscribe((type, data) => {
    if (type === 'hello') return reload()
    if (data.mac !== mac) return
    if (type === 'machine-deleted') showGone()
    else if (type === 'machine' && (gone || !doc)) reload()
    else if (type === 'machine') {
      // The progress bar moves with every message; the rest follows the next read.
      const stateChanged = doc.machine.state !== data.machine.state
      doc.machine = { ...doc.machine, ...data.machine }
      doc.phases = data.phases
      renderStatus()
      if (stateChanged) reload()
      else reloadSoon()
    } else if (type === 'event' && !gone) reloadSoon()
  })
  reload()
  return () => {
    unsubscribe()
    clearTimeout(timer)
  }
}

/** The events of the current deploy (since the last redeploy), as deploy-phases reads them. */
function currentEvents(doc) {
  const i = doc.events.findLastIndex((e) => e.kind === 'redeploy')
  return doc.events.slice(i + 1)
}

function phasesTable(phases) {
  const at = phases?.at ?? {}
  const s = phases?.seconds ?? {}
  const rows = MILESTONES.filter(([k]) => at[k]).map(([k, label]) =>
    h('tr', { dataset: { milestone: k } }, h('th', {}, label), h('td', {}, time(at[k]))),
  )
  const secs = PHASES.filter(([k]) => typeof s[k] === 'number').map(([k, label]) =>
    h('tr', { dataset: { phase: k } }, h('th', {}, label), h('td', {}, duration(s[k]))),
  )
  if (!rows.length) return h('p', { class: 'muted' }, 'No deploy has started yet.')
  return [
    h('table', { class: 'kv' }, h('tbody', {}, secs)),
    h('details', {}, h('summary', {}, 'milestones'), h('table', { class: 'kv' }, h('tbody', {}, rows))),
  ]
}

/** The latest verdict of serve's pre-flight check in the current deploy. */
function preflightVerdict(events) {
  const e = events.findLast(
    (x) =>
      x.kind === 'preflight' || (x.kind === 'failed' && ['PREFLIGHT_REFUSED', 'DEVICE_SELECT'].includes(x.fields.code)),
  )
  if (!e)
    return h(
      'p',
      { class: 'muted', dataset: { verdict: 'none' } },
      'Not run: it runs when a deploying machine sends its inventory, or when an image is assigned to one whose inventory is known.',
    )
  const f = e.fields
  if (e.kind === 'failed')
    return [
      h(
        'p',
        { class: 'verdict refused', dataset: { verdict: 'refused' } },
        h('b', {}, 'Refused'),
        ` (${f.code}): `,
        f.message,
      ),
      Array.isArray(f.problems) && f.problems.length
        ? table(
            ['role', 'PCI', 'ID', 'generic kernel modules'],
            f.problems.map((p) => [p.role, p.address, p.id, (p.genericModules ?? []).join(', ') || '–']),
          )
        : null,
    ]
  if (f.ok === null)
    return h('p', { class: 'verdict skipped', dataset: { verdict: 'skipped' } }, h('b', {}, 'Skipped'), ': ', f.skipped)
  return [
    h(
      'p',
      { class: 'verdict ok', dataset: { verdict: 'ok' } },
      h('b', {}, 'Passed'),
      `: ${f.disk} with image ${f.image}, kernel ${f.kernel?.flavor ?? '?'} ${f.kernel?.version ?? ''}`,
    ),
    Array.isArray(f.devices)
      ? h(
          'ul',
          { class: 'devices' },
          f.devices.map((d) =>
            h(
              'li',
              { dataset: { role: d.role } },
              h('b', {}, d.role === 'nic' ? 'NIC' : 'disk controller'),
              ` of ${d.for}: ${d.id} at ${d.address} → `,
              h('span', { class: d.drivers.length ? 'ok' : 'error' }, d.drivers.join(', ') || 'no driver'),
            ),
          ),
        )
      : null,
  ]
}

function inventoryView(doc) {
  const inv = doc.machine.inventory
  if (!inv) return h('p', { class: 'muted' }, 'No inventory yet: the deploy environment sends it when it is up.')
  const chosen = doc.disk && 'path' in doc.disk ? doc.disk.path : undefined
  const drivers = new Map()
  const pf = currentEvents(doc).findLast((e) => e.kind === 'preflight' && Array.isArray(e.fields.devices))
  for (const d of pf?.fields.devices ?? []) drivers.set(d.address, d.drivers.join(', ') || 'none')
  return [
    table(['firmware', 'CPUs', 'memory'], [[inv.firmware, String(inv.cpus), bytes(inv.memoryBytes)]], {
      class: 'summary',
    }),
    h('h3', {}, 'Disks'),
    doc.disk && 'error' in doc.disk
      ? h('p', { class: 'error' }, `The disk hints choose no disk: ${doc.disk.error.message}`)
      : null,
    table(
      ['', 'disk', 'size', 'sectors', 'model', 'serial', 'type', 'controller'],
      inv.disks.map((d) => [
        d.path === chosen ? h('span', { class: 'badge target', title: 'the disk the hints choose' }, 'target') : '',
        d.path,
        bytes(d.sizeBytes),
        `${d.logicalSectorSize}/${d.physicalSectorSize}`,
        d.model ?? '–',
        d.serial ?? '–',
        [d.rotational ? 'rotational' : 'solid state', d.removable ? 'removable' : ''].filter(Boolean).join(', '),
        d.controller ?? '–',
      ]),
      { rowData: inv.disks.map((d) => ({ disk: d.path, chosen: d.path === chosen ? 'true' : 'false' })) },
    ),
    h('h3', {}, 'NICs'),
    table(
      ['name', 'MAC', 'link', 'driver', 'PCI'],
      inv.nics.map((n) => [n.name, n.mac, n.link ? 'up' : 'down', n.driver ?? '–', n.pci ?? '–']),
    ),
    h('h3', {}, 'PCI devices'),
    table(
      ['address', 'ID', 'class', 'bound now', "image's driver"],
      inv.pci.map((p) => [
        p.address,
        `${p.vendor}:${p.device}`,
        PCI_CLASSES[p.class.slice(0, 4)] ?? p.class,
        p.driver ?? '–',
        drivers.get(p.address) ?? '',
      ]),
    ),
  ]
}

function reportsView(m) {
  const ir = m.installReport
  const fb = m.firstBootReport
  return [
    h('h3', {}, 'Install'),
    ir
      ? [
          table(
            ['written', 'seconds', 'source verified', 'resumes'],
            [
              [
                bytes(ir.bytes?.written),
                duration(ir.seconds?.total),
                ir.digests ? (ir.digests.sourceVerified ? 'yes' : 'no') : '–',
                String(ir.resumes?.count ?? 0),
              ],
            ],
            { class: 'summary' },
          ),
          h('details', {}, h('summary', {}, 'install report'), h('pre', {}, JSON.stringify(ir, null, 2))),
        ]
      : h('p', { class: 'muted' }, 'None yet.'),
    h('h3', {}, 'First boot'),
    fb
      ? [
          table(
            ['hostname', 'instance', 'addresses', 'cloud-init', 'uptime'],
            [
              [
                fb.hostname ?? '–',
                fb.instance_id ?? '–',
                Array.isArray(fb.addresses)
                  ? fb.addresses.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(', ')
                  : '–',
                typeof fb.cloud_init === 'object' ? JSON.stringify(fb.cloud_init) : String(fb.cloud_init ?? '–'),
                duration(fb.uptime_seconds),
              ],
            ],
            { class: 'summary' },
          ),
          h('details', {}, h('summary', {}, 'first-boot report'), h('pre', {}, JSON.stringify(fb, null, 2))),
        ]
      : h('p', { class: 'muted' }, 'None yet.'),
  ]
}

function timelineView(events) {
  if (!events.length) return h('p', { class: 'muted' }, 'No events.')
  return h(
    'ol',
    { class: 'timeline' },
    events.map((e) =>
      h(
        'li',
        { dataset: { kind: e.kind, id: String(e.id) }, class: `kind-${e.kind}` },
        h('time', { datetime: e.time }, time(e.time)),
        h('b', {}, e.kind),
        h('span', { class: 'fields' }, fieldsText(e)),
      ),
    ),
  )
}

/** An event's fields in a line: "from=new to=deploying", messages in full, objects shortened. */
function fieldsText(e) {
  const f = e.fields ?? {}
  if (e.kind === 'failed') return errorText(f)
  return Object.entries(f)
    .filter(([k]) => k !== 'logTail')
    .map(([k, v]) => {
      const s = typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)
      return `${k}=${s.length > 120 ? s.slice(0, 117) + '…' : s}`
    })
    .join(' ')
}

function table(headers, rows, opts = {}) {
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      { class: opts.class ?? 'list' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((cells, i) =>
          h(
            'tr',
            { dataset: opts.rowData?.[i] },
            cells.map((c, j) => h('td', { dataset: { label: headers[j] } }, c)),
          ),
        ),
      ),
    ),
  )
}

/** The operator's actions; built once so that what is being typed survives the page's updates. */
function actionsSection(section, mac, { done, notice }) {
  const image = h('select', { name: 'image', required: true }, h('option', { value: '' }, 'loading images…'))
  const seed = h('textarea', {
    name: 'seed',
    rows: 5,
    placeholder: 'hostname: node-1\nusers:\n  - name: ops\n    ssh_authorized_keys: [ssh-ed25519 …]',
    spellcheck: 'false',
  })
  const hints = h('textarea', {
    name: 'hints',
    rows: 2,
    placeholder: 'size=>=100G\nmodel=SAMSUNG*',
    spellcheck: 'false',
  })
  const name = h('input', { name: 'name', type: 'text', placeholder: 'keep the current name', autocomplete: 'off' })
  const result = h('p', { class: 'result', role: 'status' })
  const say = (text, ok) => {
    result.textContent = text
    result.className = `result ${ok ? 'ok' : 'error'}`
  }
  const form = h(
    'form',
    { class: 'assign', dataset: { action: 'assign' } },
    h('label', {}, 'Image', image),
    h('label', {}, 'Seed (YAML, optional; replaces the current one)', seed),
    h('label', {}, 'Disk hints (one per line, optional)', hints),
    h('label', {}, 'Name (optional)', name),
    h('button', { type: 'submit' }, 'Assign'),
  )
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const body = { image: image.value }
    if (seed.value.trim()) body.seed_yaml = seed.value.endsWith('\n') ? seed.value : `${seed.value}\n`
    const list = hints.value
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean)
    if (list.length) body.disk_hints = list
    if (name.value.trim()) body.name = name.value.trim()
    try {
      const r = await api(`/api/v1/machines/${encodeURIComponent(mac)}/assign`, { method: 'POST', body })
      say(`Assigned ${body.image}: the machine is ${r.machine.state}.`, true)
      seed.value = ''
      done()
    } catch (e) {
      say(e.hint ? `${e.message} (${e.hint})` : e.message, false)
    }
  })
  const redeploy = h('button', { type: 'button', class: 'secondary', dataset: { action: 'redeploy' } }, 'Redeploy')
  redeploy.addEventListener('click', async () => {
    if (
      !confirm(`Redeploy ${mac}? It boots the deploy environment and installs its image again; its tokens are revoked.`)
    )
      return
    try {
      const r = await api(`/api/v1/machines/${encodeURIComponent(mac)}/redeploy`, { method: 'POST' })
      say(`Redeploying: the machine is ${r.machine.state}.`, true)
      done()
    } catch (e) {
      say(e.hint ? `${e.message} (${e.hint})` : e.message, false)
    }
  })
  const forget = h('button', { type: 'button', class: 'danger', dataset: { action: 'forget' } }, 'Forget')
  forget.addEventListener('click', async () => {
    if (!confirm(`Forget ${mac}? serve drops its state and tokens (its events stay in the database).`)) return
    try {
      await api(`/api/v1/machines/${encodeURIComponent(mac)}`, { method: 'DELETE' })
      location.hash = '#/machines'
    } catch (e) {
      notice(e.message)
    }
  })
  section.append(
    h('h2', { id: 'h-actions' }, 'Actions'),
    form,
    h('div', { class: 'buttons' }, redeploy, forget),
    result,
  )
  api('/api/v1/images').then(
    (doc) => {
      const current = image.dataset.current
      replace(image, [
        ...doc.images.map((i) => h('option', { value: i.name, selected: i.name === current }, i.name)),
        // A catalog product by its first alias: serve pins the newest serial when assigning.
        ...(doc.catalog?.products ?? []).map((p) =>
          h(
            'option',
            { value: p.aliases[0] ?? p.name },
            `${p.aliases[0] ?? p.name} (newest: ${p.serials[0] ?? 'none'})`,
          ),
        ),
      ])
    },
    (e) => say(`Cannot list the images: ${e.message}`, false),
  )
  return {
    update(m) {
      if (image.dataset.current === undefined && m.image) {
        image.dataset.current = m.image
        for (const o of image.options) o.selected = o.value === m.image
      }
    },
  }
}
