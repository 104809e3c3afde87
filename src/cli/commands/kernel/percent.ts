// Shares as the kernel reports print them.

/** A share as a percentage with two decimals, rounded down so a share just short of 100% never prints as 100%. */
export function percent(x: number): string {
  return x === 1 ? '100%' : `${(Math.floor(x * 10000) / 100).toFixed(2)}%`
}
