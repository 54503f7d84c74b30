"""Task data formats and search: pairs files, IJB templates, `.bin` packs and the other formats, and
mate search for identification."""
