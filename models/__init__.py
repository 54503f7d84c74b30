"""The suite's model definitions. Each module holds one family; grid entries name them as
`models.<module>:<Class>`."""
