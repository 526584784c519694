// CPU time of the local platform's processes, from Linux /proc (NaN or 0 elsewhere).
import { readFileSync, readdirSync } from 'node:fs';

/** utime + stime of a process in ms. */
export function ticks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ = 100
  } catch {
    return NaN;
  }
}

/** The workerd child of the launcher `parent`, or 0. */
export function findWorkerd(parent: number): number {
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent && stat.includes('(workerd')) return Number(d);
      } catch {
        // gone
      }
    }
  } catch {
    // no /proc
  }
  return 0;
}
