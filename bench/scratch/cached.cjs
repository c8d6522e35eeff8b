
const fs = require("node:fs"), vm = require("node:vm"), path = require("node:path"), Module = require("node:module")
const file = path.join(__dirname, "cjs.cjs"), cacheFile = file + ".v8cache"
const source = fs.readFileSync(file, "utf8")
let cachedData; try { cachedData = fs.readFileSync(cacheFile) } catch {}
const script = new vm.Script(Module.wrap(source), { filename: file, cachedData })
const fn = script.runInThisContext()
const m = { exports: {} }
fn.call(m.exports, m.exports, Module.createRequire(file), m, file, __dirname)
if (cachedData === undefined || script.cachedDataRejected) setImmediate(() => fs.writeFileSync(cacheFile, script.createCachedData()))
