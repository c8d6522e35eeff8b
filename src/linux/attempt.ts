/**
 * Synchronous kernel work as an Effect: a SyscallError is an expected
 * failure (KernelError, with errno, its name and the kernel's own words);
 * anything else thrown is a bug and becomes a defect.
 */
import { Effect } from "effect"
import { KernelError } from "../domain/errors.js"
import * as libc from "./libc.js"

export const kernelError = (operation: string, error: libc.SyscallError): KernelError =>
  new KernelError({ operation, errno: error.errno, code: libc.errnoName(error.errno), detail: error.detail ?? error.call })

export const attempt = <A>(operation: string, action: () => A): Effect.Effect<A, KernelError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(action())
    } catch (error) {
      return error instanceof libc.SyscallError ? Effect.fail(kernelError(operation, error)) : Effect.die(error)
    }
  })
