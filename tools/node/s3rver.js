#!/usr/bin/env node
// s3rver.js: starts the S3 server that tests/integration/store_s3.sh runs against.
// The @20minutes fork of s3rver is used because it verifies AWS Signature V4 (s3rver 3.7.1,
// the last release of the original, accepts any V4 signature); its package does not ship the
// bin/s3rver.js it names, so this is that launcher: the same options as `s3rver --help`.
'use strict';
require('@20minutes/s3rver/lib/cli').parseAsync(process.argv);
