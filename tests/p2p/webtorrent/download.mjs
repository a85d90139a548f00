// Download one torrent with WebTorrent over WebRTC only, then print what happened as JSON.
// Usage: node download.mjs TORRENT_FILE OUT_DIR [TIMEOUT_SECONDS]
// The caller strips the torrent down to its WebSocket tracker (no web seed, no HTTP tracker);
// DHT, LSD, uTP, UPnP and incoming TCP are off, so every byte comes from a WebRTC peer.
import fs from 'node:fs'
import path from 'node:path'
import WebTorrent from 'webtorrent'

const [torrentPath, outDir, timeoutArg] = process.argv.slice(2)
const timeout = Number(timeoutArg || 120) * 1000

const client = new WebTorrent({
  dht: false,
  lsd: false,
  utp: false,
  natUpnp: false,
  natPmp: false,
  torrentPort: 0,
  tracker: { rtcConfig: { iceServers: [] } }
})

function finish (code, report) {
  process.stdout.write(JSON.stringify(report) + '\n')
  client.destroy(() => process.exit(code))
  setTimeout(() => process.exit(code), 5000).unref()
}

client.on('error', (err) => finish(1, { error: String(err) }))

const torrent = client.add(fs.readFileSync(torrentPath), { path: outDir })
const wireTypes = new Set()
torrent.on('wire', (wire) => wireTypes.add(wire.type))
torrent.on('warning', (err) => process.stderr.write(`warning: ${err}\n`))
const timer = setTimeout(() => {
  finish(2, { error: 'timeout', progress: torrent.progress, wires: [...wireTypes] })
}, timeout)
torrent.on('done', () => {
  clearTimeout(timer)
  finish(0, {
    name: torrent.files[0].name,
    path: path.join(outDir, torrent.files[0].path),
    length: torrent.length,
    downloaded: torrent.downloaded,
    wires: [...wireTypes]
  })
})
