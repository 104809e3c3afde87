import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AliasIndex, parsePciAlias } from './alias-index.js'

const index = new AliasIndex([
  { pattern: 'pci:v*d*sv*sd*bc01sc06i01*', module: 'ahci' },
  { pattern: 'pci:v00008086d00002922sv*sd*bc*sc*i*', module: 'ahci' },
  { pattern: 'pci:v00008086d000010D3sv*sd*bc*sc*i*', module: 'e1000e' },
  { pattern: 'pci:v0000103Cd0000323Asv0000103Csd00003241bc*sc*i*', module: 'hpsa' },
  { pattern: 'pci:v*d*sv*sd*bc06sc07i00*', module: 'yenta_socket' },
  { pattern: 'pci:v*d*sv*sd*bc0Csc03i30*', module: 'xhci_pci' },
  { pattern: 'usb:v0BDAp8153d[0-2]*dc*dsc*dp*ic*isc*ip*in*', module: 'r8152' },
  { pattern: 'acpi*:IPI0001:*', module: 'ipmi_si' },
])

test('parsePciAlias() splits a file2alias pattern into fields, null for *', () => {
  assert.deepEqual(parsePciAlias('pci:v*d*sv*sd*bc01sc06i01*', 'ahci'), {
    module: 'ahci',
    vendor: null,
    device: null,
    subvendor: null,
    subdevice: null,
    base: '01',
    sub: '06',
    progIf: '01',
  })
  assert.equal(parsePciAlias('pci:v8086*'), undefined)
})

test('modulesForModalias() matches a full PCI modalias on every field', () => {
  assert.deepEqual([...index.modulesForModalias('pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01')], ['ahci'])
  assert.deepEqual([...index.modulesForModalias('pci:v00001B36d00000010sv00001AF4sd00001100bc01sc06i01')], ['ahci'])
  assert.deepEqual([...index.modulesForModalias('pci:v00001B36d00000010sv00001AF4sd00001100bc01sc06i00')], [])
  assert.deepEqual([...index.modulesForModalias('pci:v0000103Cd0000323Asv0000103Csd00003241bc01sc04i00')], ['hpsa'])
  assert.deepEqual([...index.modulesForModalias('pci:v0000103Cd0000323Asv0000103Csd00003245bc01sc04i00')], [])
})

test('modulesForModalias() matches other buses with fnmatch, including a glob in the bus name', () => {
  assert.deepEqual([...index.modulesForModalias('usb:v0BDAp8153d1000dcFFdsc00dp00icFFiscFFip00in00')], ['r8152'])
  assert.deepEqual([...index.modulesForModalias('usb:v0BDAp8153d3000dcFFdsc00dp00icFFiscFFip00in00')], [])
  assert.deepEqual([...index.modulesForModalias('acpi:IPI0001:')], ['ipmi_si'])
})

test('modulesForPci() treats unknown subsystem ids and programming interface as matching', () => {
  assert.deepEqual([...index.modulesForPci({ vendor: '103c', device: '323a' })], ['hpsa'])
  assert.deepEqual([...index.modulesForPci({ vendor: '8086', device: '10d3' })], ['e1000e'])
  assert.deepEqual(
    [...index.modulesForPci({ vendor: '1022', device: '7901', classes: [{ base: '01', sub: '06' }] })],
    ['ahci'],
  )
  assert.deepEqual(
    [...index.modulesForPci({ vendor: '1022', device: '7901', classes: [{ base: '01', sub: '06', progIf: '00' }] })],
    [],
  )
})

test('modulesForPci() does not let a class alias match a device of unknown class or subclass', () => {
  assert.deepEqual([...index.modulesForPci({ vendor: '1022', device: '7901' })], [])
  assert.deepEqual([...index.modulesForPci({ vendor: '8086', device: '244e', classes: [{ base: '06' }] })], [])
  assert.deepEqual(
    [...index.modulesForPci({ vendor: '1180', device: '0476', classes: [{ base: '06', sub: '07' }] })],
    ['yenta_socket'],
  )
})

test('modulesForPci() compares known subsystem ids', () => {
  assert.deepEqual(
    [...index.modulesForPci({ vendor: '103c', device: '323a', subvendor: '103c', subdevice: '3241' })],
    ['hpsa'],
  )
  assert.deepEqual(
    [...index.modulesForPci({ vendor: '103c', device: '323a', subvendor: '103c', subdevice: '9999' })],
    [],
  )
})
