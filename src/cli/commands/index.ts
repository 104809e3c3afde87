// Every verb of the CLI, in the order `hwimage --help` lists them. A verb's module (and
// what it needs: the builder, the lab, YAML and schema validation) is loaded only when
// that verb runs, so `hwimage install` does not pay for the lab's code at start-up.

import type { Command } from '../command.js'

/** A verb as `hwimage --help` lists it, and how to load it. */
export interface Verb {
  name: string
  summary: string
  load(): Promise<Command>
}

export const verbs: Verb[] = [
  {
    name: 'build',
    summary: 'build a hardware image from a YAML spec (default: Debian 12, UEFI+SB and BIOS)',
    load: async () => (await import('./build.js')).buildCommand,
  },
  {
    name: 'install',
    summary: 'write an image onto a disk, verified, first MiB last',
    load: async () => (await import('./install.js')).installCommand,
  },
  {
    name: 'publish',
    summary: 'publish builds into a signed simplestreams catalog (MAAS, sstream-*, install --catalog)',
    load: async () => (await import('./publish.js')).publishCommand,
  },
  {
    name: 'cycle',
    summary: 'rebuild and publish a spec when a package, the spec or hwimage changed (exit 3: nothing changed)',
    load: async () => (await import('./cycle.js')).cycleCommand,
  },
  {
    name: 'catalog',
    summary: 'list or show what a simplestreams catalog (URL or directory) holds',
    load: async () => (await import('./catalog.js')).catalogCommand,
  },
  {
    name: 'convert',
    summary: 'an existing Debian 12 cloud image → a hardware image (the hardware kernel inserted)',
    load: async () => (await import('./convert.js')).convertCommand,
  },
  {
    name: 'inspect',
    summary: "show an image's partitions, boot paths, kernel and problems",
    load: async () => (await import('./inspect.js')).inspectCommand,
  },
  {
    name: 'boot',
    summary: 'boot an image once in QEMU and report what first boot proved',
    load: async () => (await import('./boot.js')).bootCommand,
  },
  {
    name: 'test',
    summary: 'boot an image across emulated firmware, storage controllers and NICs, and report',
    load: async () => (await import('./test.js')).testCommand,
  },
  {
    name: 'kernel',
    summary: 'kernel module footprint against hardware coverage; the server module set',
    load: async () => (await import('./kernel.js')).kernelCommand,
  },
  {
    name: 'seed',
    summary: 'make a first-boot seed volume (NoCloud CIDATA, config-2, Ironic config drive)',
    load: async () => (await import('./seed.js')).seedCommand,
  },
  {
    name: 'inventory',
    summary: "this machine's PCI devices, disks, NICs, firmware; --check: does an image's kernel drive it",
    load: async () => (await import('./inventory.js')).inventoryCommand,
  },
  {
    name: 'build-deploy',
    summary: 'build the network deploy environment: signed kernel + one initramfs running hwimage',
    load: async () => (await import('./build-deploy.js')).buildDeployCommand,
  },
  {
    name: 'deploy-agent',
    summary: 'in the deploy environment: inventory to serve, install the assigned image and seed, report, reboot',
    load: async () => (await import('./deploy-agent.js')).deployAgentCommand,
  },
  {
    name: 'ironic-agent',
    summary: "in the deploy environment booted by OpenStack Ironic: act as Ironic's agent (direct deploy)",
    load: async () => (await import('./ironic-agent.js')).ironicAgentCommand,
  },
  {
    name: 'listen',
    summary: 'receive first-boot reports over HTTP and print them as JSON lines',
    load: async () => (await import('./listen.js')).listenCommand,
  },
  {
    name: 'serve',
    summary: "a rack's deploy server: boot answers, images, seeds, machine state, JSON API",
    load: async () => (await import('./serve.js')).serveCommand,
  },
  {
    name: 'machines',
    summary: 'list, show, assign and redeploy the machines of a running serve',
    load: async () => (await import('./machines.js')).machinesCommand,
  },
]
