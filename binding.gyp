{
  "targets": [
    {
      "target_name": "krgo_native",
      "sources": ["native/krgo_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
