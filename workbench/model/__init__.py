"""Model forensics: artefact inventory, static pickle analysis, tensor diffs and signature verification.

Nothing in this package executes, imports or unpickles an artefact: files are classified by their bytes, pickles
are disassembled with :mod:`pickletools`, archives are read member by member under size caps.
"""
