"""The engines: the S3Net relighter (+ fast CUDA path), composition of the output, the gain map, the
normals engine, the guide library, live preview and the batch runner."""
