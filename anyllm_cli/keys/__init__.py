"""Virtual keys: their format (`format`), management (`manage`), price table (`pricing`), the
cached lookup used by authentication (`resolver`) and the pipeline `Guard` (`guard`)."""
