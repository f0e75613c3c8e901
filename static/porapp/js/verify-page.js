// placeholder: the in-browser verifier (issue #11)
