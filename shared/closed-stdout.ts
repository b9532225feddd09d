// Imported first by the commands a person runs from the shell. When the
// reader of stdout goes away (`./sempre secrets init | head -3`), the command
// goes on with nothing printed, so that it still finishes its work and its
// cleanup (a drill reverts its fault, `up` stops what it started), instead
// of dying on an unhandled EPIPE halfway through.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});
