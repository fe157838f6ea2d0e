{
  "targets": [
    {
      "target_name": "krgo_native",
      "sources": ["native/krgo_native.c", "native/gzip_index.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
