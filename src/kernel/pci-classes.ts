// Device classes: the names the population table groups PCI ids under (linuxhw's
// "Storage/ata", "Net/ethernet", "Usb controller" …) and the PCI class codes they
// stand for (PCI Code and ID Assignment Specification r1.15, §1). The table gives
// no class code per id, so a section's codes are what an alias constrained by
// class (ahci: `bc01sc06i01`) is compared with. Where a section spans several
// subclasses, every one is a candidate; a section not listed here has no known
// class, and class-constrained aliases never match its ids.

import type { PciClassCode } from './alias-index.js'

/**
 * The classes a server's coverage is judged by: storage, Ethernet, InfiniBand and USB
 * controllers. Coverage reports them first, in this order, and lists their uncovered devices.
 */
export const SERVER_CLASSES: readonly string[] = [
  'Storage/ata',
  'Storage/nvme',
  'Storage/raid',
  'Storage/sas',
  'Storage/scsi',
  'Storage/ide',
  'Storage/other',
  'Net/ethernet',
  'Net/infiniband',
  'Usb controller',
]

/** Population-table section → candidate PCI class codes (base, subclass). */
export const SECTION_CLASSES: Readonly<Record<string, readonly PciClassCode[]>> = {
  'Storage/scsi': [{ base: '01', sub: '00' }],
  'Storage/ide': [{ base: '01', sub: '01' }],
  'Storage/raid': [{ base: '01', sub: '04' }],
  'Storage/ata': [{ base: '01', sub: '06' }],
  'Storage/sas': [{ base: '01', sub: '07' }],
  'Storage/nvme': [{ base: '01', sub: '08' }],
  'Storage/other': [
    { base: '01', sub: '80' },
    { base: '01', sub: '05' },
    { base: '01', sub: '09' },
  ],
  'Net/ethernet': [{ base: '02', sub: '00' }],
  'Ethernet controller': [{ base: '02', sub: '00' }],
  'Net/wireless': [{ base: '02', sub: '80' }],
  'Net/other': [
    { base: '02', sub: '80' },
    { base: '02', sub: '07' },
    { base: '02', sub: '08' },
  ],
  'Graphics card': [
    { base: '03', sub: '00' },
    { base: '03', sub: '02' },
    { base: '03', sub: '80' },
  ],
  Multimedia: [{ base: '04', sub: '00' }],
  Sound: [
    { base: '04', sub: '01' },
    { base: '04', sub: '03' },
  ],
  'Multimedia controller': [{ base: '04', sub: '80' }],
  'Memory controller': [{ base: '05' }],
  Bridge: [{ base: '06' }],
  'Serial controller': [{ base: '07', sub: '00' }],
  'Parallel controller': [{ base: '07', sub: '01' }],
  'Multiport serial controller': [{ base: '07', sub: '02' }],
  Modem: [{ base: '07', sub: '03' }],
  'Communication controller': [{ base: '07', sub: '80' }],
  Pic: [{ base: '08', sub: '00' }],
  'Dma controller': [{ base: '08', sub: '01' }],
  'Sd host controller': [{ base: '08', sub: '05' }],
  Iommu: [{ base: '08', sub: '06' }],
  'System peripheral': [{ base: '08', sub: '80' }],
  'Input device controller': [{ base: '09' }],
  'Docking station': [{ base: '0A' }],
  Processor: [{ base: '0B' }],
  'Firewire controller': [{ base: '0C', sub: '00' }],
  'Access bus': [{ base: '0C', sub: '01' }],
  Ssa: [{ base: '0C', sub: '02' }],
  'Usb controller': [{ base: '0C', sub: '03' }],
  Smbus: [{ base: '0C', sub: '05' }],
  'Ipmi smic interface': [{ base: '0C', sub: '07' }],
  'Serial bus controller': [{ base: '0C', sub: '80' }],
  'Encryption controller': [{ base: '10' }],
  'Signal processing controller': [{ base: '11' }],
  'Processing accelerators': [{ base: '12' }],
  'Non-essential instrumentation': [{ base: '13' }],
}

// Class code → section name, most specific first: (base, sub) pairs, then base alone.
const BY_CODE = new Map<string, string>()
for (const [name, codes] of Object.entries(SECTION_CLASSES)) {
  if (name === 'Ethernet controller' || name === 'Net/wireless') continue // aliases of Net/ethernet, Net/other
  for (const c of codes) {
    const key = c.sub === undefined ? c.base : `${c.base}${c.sub}`
    if (!BY_CODE.has(key)) BY_CODE.set(key, name)
  }
}
BY_CODE.set('0207', 'Net/infiniband')
BY_CODE.set('0C06', 'Net/infiniband')
BY_CODE.set('0C04', 'Storage/fibre-channel')
BY_CODE.set('01', 'Storage/other')
BY_CODE.set('02', 'Net/other')
BY_CODE.set('03', 'Graphics card')
BY_CODE.set('04', 'Multimedia controller')
BY_CODE.set('07', 'Communication controller')
BY_CODE.set('08', 'System peripheral')
BY_CODE.set('0C', 'Serial bus controller')

/** The class name (population-table style) for a PCI class code, e.g. ("01","06") → "Storage/ata". */
export function classNameOf(base: string, sub: string): string {
  const b = base.toUpperCase()
  const s = sub.toUpperCase()
  return BY_CODE.get(`${b}${s}`) ?? BY_CODE.get(b) ?? `PCI class ${b}${s}`
}

/** The candidate class codes of a population-table section (empty when unknown). */
export function classCodesOf(section: string): readonly PciClassCode[] {
  return SECTION_CLASSES[section] ?? []
}
