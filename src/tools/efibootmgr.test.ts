import assert from 'node:assert/strict'
import { test } from 'node:test'
import { efibootmgrBootNextArgv, efibootmgrCreateArgv, efibootmgrDeleteArgv, parseBootEntries } from './efibootmgr.js'

test('efibootmgr argv: an entry for the installed shim, made outside BootOrder, then BootNext', () => {
  assert.deepEqual(
    efibootmgrCreateArgv({ disk: '/dev/nvme0n1', part: 15, label: 'hwimage', loader: '\\EFI\\debian\\shimx64.efi' }),
    [
      'efibootmgr',
      '--create-only',
      '--disk',
      '/dev/nvme0n1',
      '--part',
      '15',
      '--label',
      'hwimage',
      '--loader',
      '\\EFI\\debian\\shimx64.efi',
    ],
  )
  assert.deepEqual(efibootmgrBootNextArgv('0004'), ['efibootmgr', '--bootnext', '0004'])
  assert.deepEqual(efibootmgrDeleteArgv('0004'), ['efibootmgr', '--bootnum', '0004', '--delete-bootnum'])
})

test("parseBootEntries(): efibootmgr 17's listing, active and inactive entries", () => {
  const text = `BootCurrent: 0001
Timeout: 0 seconds
BootOrder: 0001,0000
Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)
Boot0001* UEFI PXEv4 (MAC:525400123456)\tPciRoot(0x0)/Pci(0x3,0x0)/MAC(525400123456,1)/IPv4(0.0.0.00.0.0.0,0,0)
Boot000a  hwimage\tHD(15,GPT,…)/File(\\EFI\\debian\\shimx64.efi)
`
  assert.deepEqual(parseBootEntries(text), [
    { bootnum: '0000', active: true, label: 'UiApp' },
    { bootnum: '0001', active: true, label: 'UEFI PXEv4 (MAC:525400123456)' },
    { bootnum: '000A', active: false, label: 'hwimage' },
  ])
})
