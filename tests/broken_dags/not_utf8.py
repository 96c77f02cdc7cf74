# expect: 2: file is not valid UTF-8
x = "ÿþ"
