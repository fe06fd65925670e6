"""Reading users' data: tables, image folders and zips, pixels, truncating tokenisation, the sample datasets."""
