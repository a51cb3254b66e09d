from buildtape.cli import main

main()
