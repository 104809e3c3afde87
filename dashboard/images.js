// Images (#/images): what serve's config offers, from GET /api/v1/images — each image's
// boot modes, sizes, kernel, packages (from its build's manifest.json) and files; the full
// package list from GET /api/v1/images/NAME when asked for.

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
      replace(
        list,
        doc.images.length ? doc.images.map(imageCard) : h('p', { class: 'muted' }, 'The config names no images.'),
      )
    },
    (e) => alive && replace(list, h('p', { class: 'error' }, e.message)),
  )
  return () => {
    alive = false
  }
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
    h('h2', {}, img.name, m ? h('span', { class: 'muted' }, ` ${m.name}`) : null),
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
