# cmake -DSOURCE=<repository>/bundles -DDESTINATION=<payload folder> -P CopyBundles.cmake
# Copies the shipped bundles without the outputs of training and evaluation runs kept in bundle folders.
file(COPY ${SOURCE} DESTINATION ${DESTINATION}
  PATTERN training EXCLUDE
  PATTERN eval EXCLUDE
  PATTERN __pycache__ EXCLUDE
  PATTERN ".*" EXCLUDE
  )
