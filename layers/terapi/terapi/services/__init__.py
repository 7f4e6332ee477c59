"""Services: the product's operations, independent of HTTP; handlers call one each."""
