/**
 * What stands behind a SandboxNamespace in the Linux layer: the fd that holds
 * the namespace open. The Namespaces layer registers it; Links and Arp read it.
 */
import type { SandboxNamespace } from "../services/Namespaces.js"

const fds = new WeakMap<SandboxNamespace, number>()

export const register = (namespace: SandboxNamespace, fd: number): void => {
  fds.set(namespace, fd)
}

export const unregister = (namespace: SandboxNamespace): void => {
  fds.delete(namespace)
}

export const namespaceFd = (namespace: SandboxNamespace): number => {
  const fd = fds.get(namespace)
  if (fd === undefined) throw new Error(`namespace ${namespace.id} is not open in the Linux layer`)
  return fd
}
