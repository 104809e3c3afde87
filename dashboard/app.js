// The dashboard's shell: the header, the live indicator, sign-out, and a hash router
// (#/machines, #/machines/MAC, #/images) that mounts one view at a time. A view is a
// function (main, params) → unmount. docs/dashboard.md describes the pages.

import { onStreamStatus, operatorToken, signOut } from './api.js'
import { imagesView } from './images.js'
import { machineView } from './machine.js'
import { machinesView } from './machines.js'

const main = document.getElementById('main')
const live = document.getElementById('live')
const signOutButton = document.getElementById('sign-out')
let unmount = () => {}

onStreamStatus((status) => {
  live.dataset.status = status
  live.textContent = status
  signOutButton.hidden = !operatorToken()
})

signOutButton.addEventListener('click', () => {
  signOut()
  location.reload()
})
// The sign-in dialog cannot be dismissed: the page has nothing to show without the API.
document.getElementById('sign-in').addEventListener('cancel', (ev) => ev.preventDefault())

function route() {
  const hash = location.hash.replace(/^#/, '') || '/machines'
  const [pathPart, queryPart] = hash.split('?')
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent)
  const query = new URLSearchParams(queryPart ?? '')
  unmount()
  main.replaceChildren()
  let view
  if (parts[0] === 'machines' && parts.length === 2) view = () => machineView(main, { mac: parts[1] })
  else if (parts[0] === 'images') view = () => imagesView(main, {})
  else view = () => machinesView(main, { state: query.get('state') ?? '' })
  for (const a of document.querySelectorAll('[data-nav]'))
    a.toggleAttribute('aria-current', a.dataset.nav === (parts[0] === 'images' ? 'images' : 'machines'))
  unmount = view() ?? (() => {})
}

window.addEventListener('hashchange', route)
route()
