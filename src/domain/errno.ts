/** errno numbers to their names (EEXIST, ENODEV...), the way the kernel's users quote them. */
import { constants } from "node:os"

const names: Record<number, string> = Object.fromEntries(
  Object.entries(constants.errno).map(([name, value]) => [value, name])
)
// EAGAIN and EWOULDBLOCK share 11: prefer the name people search for.
names[11] = "EAGAIN"

export const errnoName = (errno: number): string => names[errno] ?? `errno ${errno}`

export const errno = constants.errno
