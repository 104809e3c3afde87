// Images (#/images): what serve's config and its catalog offer, from GET /api/v1/images — each image's
// boot modes, sizes, kernel, packages (from its build's manifest.json) and files; the full
// package list from GET /api/v1/images/NAME when asked for; and the hardware lab's results
// (GET /api/v1/images/NAME/lab) drawn as the firmware × storage × NIC grid. The catalog's
// products follow, each with its newest serial's card and the older serials folded.

import { api } from './api.js'
import { h, replace } from './dom.js'
import { bytes, duration, time } from './format.js'

export function imagesView(main) {
  const list = h('div', { class: 'images' }, h('p', { class: 'muted' }, 'Loading…'))
  main.append(h('h1', {}, 'Images'), list)
  let alive = true
  api('/api/v1/images').then(
    (doc) => {
      if (!alive) return
      const configured = doc.images.filter((i) => !i.catalog)
      replace(
        list,
        configured.length || doc.catalog
          ? configured.map(imageCard)
          : h('p', { class: 'muted' }, 'The config names no images.'),
        doc.catalog
          ? catalogSection(
              doc.catalog,
              doc.images.filter((i) => i.catalog),
            )
          : null,
      )
    },
    (e) => alive && replace(list, h('p', { class: 'error' }, e.message)),
  )
  return () => {
    alive = false
  }
}

/** The catalog: who signed it, then each product with its serials, newest first (older ones folded). */
function catalogSection(cat, versions) {
  return h(
    'section',
    { class: 'catalog', dataset: { field: 'catalog' } },
    h('h2', {}, 'Catalog'),
    h(
      'p',
      {},
      h('span', { class: 'mono' }, cat.dir),
      ' · ',
      cat.signedBy
        ? h('span', { class: 'badge', dataset: { field: 'signed' } }, `signed by ${cat.signedBy}`)
        : h('span', { class: 'badge error', dataset: { field: 'signed' } }, 'unverified (insecure)'),
      ` · updated ${cat.updated}`,
    ),
    cat.error
      ? h('p', { class: 'error' }, `The last read failed, showing the catalog as read before: ${cat.error}`)
      : null,
    cat.refused.length
      ? h(
          'ul',
          { class: 'error', dataset: { field: 'refused' } },
          cat.refused.map((r) => h('li', {}, `${r.image} is not offered: ${r.reason}`)),
        )
      : null,
    cat.products.map((p) => {
      const mine = versions.filter((v) => v.catalog.product === p.name)
      const [newest, ...older] = mine
      return h(
        'div',
        { class: 'product', dataset: { product: p.name } },
        h('h3', {}, p.name, h('span', { class: 'muted' }, ` ${p.aliases.join(', ')}`)),
        newest ? imageCard(newest) : h('p', { class: 'muted' }, 'No version is offered.'),
        older.length
          ? h('details', {}, h('summary', {}, `older serials (${older.length})`), older.map(imageCard))
          : null,
      )
    }),
  )
}

function imageCard(img) {
  const m = img.manifest
  const zst = img.files.find((f) => f.name === img.file)
  const kv = (rows) =>
    h(
      'table',
      { class: 'kv' },
      h(
        'tbody',
        {},
        rows.filter(Boolean).map(([k, v, field]) => h('tr', {}, h('th', {}, k), h('td', { dataset: { field } }, v))),
      ),
    )
  return h(
    'article',
    { class: 'card image', dataset: { image: img.name } },
    img.catalog
      ? h(
          'h2',
          {},
          img.catalog.serial,
          img.catalog.latest ? h('span', { class: 'badge target' }, 'newest') : null,
          h('span', { class: 'muted' }, ` ${img.name}`),
        )
      : h('h2', {}, img.name, m ? h('span', { class: 'muted' }, ` ${m.name}`) : null),
    m
      ? [
          h(
            'p',
            { class: 'modes', dataset: { field: 'boot-modes' } },
            m.bootModes.map((b) => h('span', { class: `badge mode-${b}` }, b)),
          ),
          kv([
            ['release', `Debian ${m.release} ${m.architecture}`],
            ['kernel', `${m.kernel.flavor} ${m.kernel.version}`, 'kernel'],
            [
              'kernel footprint',
              `${bytes(m.kernel.footprintBytes)}, ${m.kernel.modules} modules, initrd ${bytes(m.kernel.initrdBytes)}`,
            ],
            [
              'disk image',
              `${bytes(m.image.sizeBytes)} (${bytes(m.image.mappedBytes)} mapped), ${m.image.sectorSize}-byte sectors`,
              'size',
            ],
            zst ? ['download', `${bytes(zst.sizeBytes)} (${img.file})`, 'download'] : null,
            [
              'packages',
              `${m.packageCount}${m.specPackages.length ? ` (added: ${m.specPackages.join(', ')})` : ''}`,
              'packages',
            ],
            ['built', `${time(m.build.date)} in ${duration(m.build.seconds)} by hwimage ${m.hwimageVersion}`],
          ]),
          packagesDetails(img.name),
        ]
      : h('p', { class: 'error' }, img.manifestError ?? 'No manifest.json.'),
    labSection(img.name),
    h(
      'details',
      {},
      h('summary', {}, `files (${img.files.length})`),
      h(
        'ul',
        { class: 'files' },
        img.files.map((f) => h('li', {}, h('a', { href: f.url }, f.name), ` ${bytes(f.sizeBytes)}`)),
      ),
    ),
  )
}

/** The package list, read when the operator opens it. */
function packagesDetails(name) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'))
  const details = h('details', { class: 'packages' }, h('summary', {}, 'package list'), body)
  let loaded = false
  details.addEventListener('toggle', async () => {
    if (!details.open || loaded) return
    loaded = true
    try {
      const doc = await api(`/api/v1/images/${encodeURIComponent(name)}`)
      const pkgs = Object.entries(doc.image.manifest?.packages ?? {}).sort(([a], [b]) => a.localeCompare(b))
      const filter = h('input', { type: 'search', placeholder: 'filter packages', 'aria-label': 'filter packages' })
      const tbody = h('tbody')
      const show = () => {
        const q = filter.value.trim().toLowerCase()
        replace(
          tbody,
          pkgs
            .filter(([p]) => !q || p.includes(q))
            .map(([p, v]) => h('tr', {}, h('td', {}, p), h('td', { class: 'mono' }, v))),
        )
      }
      filter.addEventListener('input', show)
      show()
      replace(body, filter, h('div', { class: 'scroll tall' }, h('table', { class: 'list' }, tbody)))
    } catch (e) {
      replace(body, h('p', { class: 'error' }, e.message))
    }
  })
  return details
}

/** The lab grid: one row per storage controller and NIC, one column per firmware; the diagnosis on hover. */
function labSection(name) {
  const section = h('section', { class: 'lab', dataset: { field: 'lab' } })
  api(`/api/v1/images/${encodeURIComponent(name)}/lab`).then(
    (doc) => {
      if (doc.error) return replace(section, h('h3', {}, 'Hardware lab'), h('p', { class: 'error' }, doc.error))
      if (!doc.lab)
        return replace(
          section,
          h('h3', {}, 'Hardware lab'),
          h('p', { class: 'muted' }, 'No results: run hwimage test IMAGE_DIR --report IMAGE_DIR/lab-report.'),
        )
      replace(section, labGridView(doc.lab))
    },
    (e) => replace(section, h('p', { class: 'error' }, e.message)),
  )
  return section
}

function labGridView(lab) {
  const cells = new Map(lab.cells.map((c) => [`${c.firmware}--${c.storage}--${c.nic}`, c]))
  const s = lab.summary
  const rows = []
  for (const storage of lab.storages)
    for (const [i, nic] of lab.nics.entries())
      rows.push(
        h(
          'tr',
          {},
          i === 0 ? h('th', { rowspan: lab.nics.length, scope: 'rowgroup' }, storage) : null,
          h('th', { scope: 'row', class: 'nic' }, nic),
          lab.firmwares.map((fw) => labCell(cells.get(`${fw}--${storage}--${nic}`), `${fw}--${storage}--${nic}`)),
        ),
      )
  return [
    h('h3', {}, 'Hardware lab'),
    h(
      'p',
      { class: 'lab-summary' },
      h('span', { class: 'lab-pass-text' }, `${s.pass} pass`),
      ', ',
      h('span', { class: s.fail ? 'error' : '' }, `${s.fail} fail`),
      `, ${s.notApplicable} not applicable · ${lab.mode === 'all' ? 'full matrix' : 'covering set'} · `,
      `kernel ${lab.image.kernelFlavor ?? '?'} ${lab.image.kernelVersion ?? ''} · ${time(lab.started)}, ${duration(lab.seconds)}`,
    ),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { class: 'lab-grid' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'storage'),
            h('th', {}, 'NIC'),
            lab.firmwares.map((f) => h('th', {}, f)),
          ),
        ),
        h('tbody', {}, rows),
      ),
    ),
  ]
}

function labCell(c, id) {
  if (!c) return h('td', { class: 'lab-cell lab-none', dataset: { cell: id } }, '')
  const status = c.status === 'n/a' ? 'na' : c.status
  const title =
    c.status === 'pass'
      ? `passed in ${duration(c.seconds)}${c.secureBoot ? `, Secure Boot ${c.secureBoot}` : ''}`
      : c.status === 'fail'
        ? `${c.diagnosis?.code ?? 'failed'}: ${c.diagnosis?.summary ?? ''}${c.reached ? ` (reached ${c.reached})` : ''}`
        : `not applicable: ${c.reason ?? ''}`
  const text =
    c.status === 'pass'
      ? duration(c.seconds, { whole: true })
      : c.status === 'fail'
        ? (c.diagnosis?.code ?? 'fail')
        : '–'
  return h('td', { class: `lab-cell lab-${status}`, title, dataset: { cell: id, status: c.status } }, text)
}
