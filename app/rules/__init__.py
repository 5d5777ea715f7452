"""Pure rules that a transport (app/poll, app/ingest) and the write or read side (app/correlate,
app/edge) both apply, kept here so that each exists once and neither side imports the other.
They import nothing from app but app.domain."""
