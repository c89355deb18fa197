// Upload a file with tus-js-client (npm), in its mode for the IETF resumable-upload draft,
// with its default retries, as a web or Node app would. The course's tests run it:
//
//   node tus_upload.js ENDPOINT FILE [PROTOCOL]
//
// PROTOCOL: ietf-draft-05 (the default here) or ietf-draft-03.
// It prints one line of JSON: {"ok": true, "url": UPLOAD_URL} once the upload is complete,
// or {"ok": false, "error": MESSAGE} (and exits with 1) when tus-js-client gives up.
const fs = require('fs')
const tus = require('tus-js-client')

const [endpoint, path, protocol = 'ietf-draft-05'] = process.argv.slice(2)
const upload = new tus.Upload(fs.readFileSync(path), {
  endpoint,
  protocol, // Upload-Draft-Interop-Version: 6 (or 5); retryDelays: [0, 1000, 3000, 5000]
  onError (error) {
    console.log(JSON.stringify({ ok: false, error: error.message }))
    process.exitCode = 1
  },
  onSuccess () {
    console.log(JSON.stringify({ ok: true, url: upload.url }))
  }
})
upload.start()
