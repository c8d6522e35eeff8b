/** Phase 3: the sandbox's own network namespace, held for the scope's lifetime. */
import { Effect } from "effect"
import { Namespaces } from "../services/Namespaces.js"

export const clone = Effect.flatMap(Namespaces, (namespaces) => namespaces.create).pipe(Effect.withSpan("clone"))
