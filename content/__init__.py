"""Everything that moves a media's bytes: upload, streaming, download, presigned completion,
verify and moves between stores. Stands above ``media`` and ``stores``; neither imports it."""
